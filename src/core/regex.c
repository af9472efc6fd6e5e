/*
 * RE2 (Go regexp/syntax) compatibility check.
 *
 * Kuma compiles user regular expressions with Go's regexp.Compile, i.e. RE2
 * syntax with Perl extensions (syntax.Perl = ClassNL|OneLine|PerlX|
 * UnicodeGroups). Compiling the user's pattern with PCRE2 and black-listing
 * PCRE-only constructs gives wrong answers both ways: PCRE2 rejects patterns
 * Go accepts (`^*`, `a(?i)*`, `[\d-z]`, `[[.a.]]`, `(?P<1a>x)`, `\p{Kawi}`,
 * `\x{D800}`) and accepts patterns Go rejects (`a{2}{3}`, `[\b]`, `\Z`, `\e`,
 * `(a{100}){100}`). And the legacy Mesh validator quotes Go's error text
 * ("provided regexp isn't correct: error parsing regexp: ...").
 *
 * So this file is a port of the error paths of Go's regexp/syntax parser
 * (parse.go, Go 1.25): same scanning order, same error codes, same offending
 * expression in the message. It builds no syntax tree; it keeps just enough
 * state per open group to decide what Go decides (is there an operand for a
 * repetition, nested repetition counts, tree height and program size).
 *
 * While scanning it also writes an equivalent pattern in a PCRE2-neutral
 * form (every literal as \x{..}, assertions as empty groups, Unicode classes
 * as \p{L}, counted repeats as *), and compiles that with PCRE2 (UTF mode)
 * as a structural cross-check of the scanner. Size and nesting limits are
 * Go's (modelled below), so PCRE2's own, smaller limits are not applied.
 *
 * Approximations (documented, pathological inputs only): Go's tree height
 * and program size are computed on a model of the tree that does not merge
 * single-character alternations into classes; the rune budget of character
 * classes (maxRunes) is not modelled.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/regex.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

/* Go regexp/syntax ErrorCode strings. */
enum re_code {
    RE_OK = 0,
    RE_INVALID_CHAR_RANGE,
    RE_INVALID_ESCAPE,
    RE_INVALID_NAMED_CAPTURE,
    RE_INVALID_PERL_OP,
    RE_INVALID_REPEAT_OP,
    RE_INVALID_REPEAT_SIZE,
    RE_INVALID_UTF8,
    RE_MISSING_BRACKET,
    RE_MISSING_PAREN,
    RE_MISSING_REPEAT_ARG,
    RE_TRAILING_BACKSLASH,
    RE_UNEXPECTED_PAREN,
    RE_NESTING_DEPTH,
    RE_LARGE,
};

static const char *const code_text[] = {
    [RE_OK] = "",
    [RE_INVALID_CHAR_RANGE] = "invalid character class range",
    [RE_INVALID_ESCAPE] = "invalid escape sequence",
    [RE_INVALID_NAMED_CAPTURE] = "invalid named capture",
    [RE_INVALID_PERL_OP] = "invalid or unsupported Perl syntax",
    [RE_INVALID_REPEAT_OP] = "invalid nested repetition operator",
    [RE_INVALID_REPEAT_SIZE] = "invalid repeat count",
    [RE_INVALID_UTF8] = "invalid UTF-8",
    [RE_MISSING_BRACKET] = "missing closing ]",
    [RE_MISSING_PAREN] = "missing closing )",
    [RE_MISSING_REPEAT_ARG] = "missing argument to repetition operator",
    [RE_TRAILING_BACKSLASH] = "trailing backslash at end of expression",
    [RE_UNEXPECTED_PAREN] = "unexpected )",
    [RE_NESTING_DEPTH] = "expression nests too deeply",
    [RE_LARGE] = "expression too large",
};

#define MAX_RUNE 0x10FFFF
#define RUNE_ERROR 0xFFFD
#define MAX_REPEAT 1000
#define MAX_HEIGHT 1000
#define MAX_SIZE ((int64_t)(128 << 20) / 40) /* Go: 128 MiB / instSize */

/* One open group (frames[0] is the whole expression). */
struct frame {
    bool capture;  /* closing it creates an OpCapture node */
    bool top_real; /* Go's stack top in this group is an operand (not a pseudo-op) */
    /* Finished alternatives of this group. */
    int alt_n;
    int64_t alt_size;
    int alt_height;
    int64_t alt_prod;
    /* Finished items of the current alternative, without the last one. */
    int cat_n;
    int64_t cat_size;
    int cat_height;
    int64_t cat_prod;
    /* The last item: what a following repetition applies to. */
    bool has_last;
    int64_t last_size;
    int last_height;
    int64_t last_prod; /* product of nested counted repeats, as repeatIsValid walks it */
};

struct parser {
    const char *whole;
    struct frame *frames;
    size_t depth; /* frames in use */
    size_t cap;
    struct strbuf out;
    enum re_code code;
    const char *ex; /* offending expression */
    size_t exlen;
};

struct item {
    int64_t size;
    int height;
    int64_t prod;
};

static bool fail(struct parser *p, enum re_code code, const char *ex, size_t exlen)
{
    p->code = code;
    p->ex = ex;
    p->exlen = exlen;
    return false;
}

/*
 * utf8.DecodeRuneInString: returns the rune and its length; an invalid or
 * truncated sequence is (RUNE_ERROR, 1); the empty string is (RUNE_ERROR, 0).
 */
static uint32_t decode_rune(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c;
    size_t n;
    if (u[0] == 0) {
        *len = 0;
        return RUNE_ERROR;
    }
    if (u[0] < 0x80) {
        *len = 1;
        return u[0];
    }
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        c = u[0] & 0x1Fu;
        n = 2;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        c = u[0] & 0x0Fu;
        n = 3;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        c = u[0] & 0x07u;
        n = 4;
    } else {
        *len = 1;
        return RUNE_ERROR;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *len = 1;
            return RUNE_ERROR;
        }
        c = (c << 6) | (u[i] & 0x3Fu);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > MAX_RUNE)) ||
        (c >= 0xD800 && c <= 0xDFFF)) {
        *len = 1;
        return RUNE_ERROR;
    }
    *len = n;
    return c;
}

/* Go's nextRune: consume one rune of *t or fail with ErrInvalidUTF8. */
static bool next_rune(struct parser *p, const char **t, uint32_t *c)
{
    size_t n;
    *c = decode_rune(*t, &n);
    if (*c == RUNE_ERROR && n == 1)
        return fail(p, RE_INVALID_UTF8, *t, strlen(*t));
    *t += n;
    return true;
}

/* Go's checkUTF8 on s[0..len). */
static bool check_utf8(struct parser *p, const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        size_t n;
        uint32_t c = decode_rune(s, &n);
        if ((c == RUNE_ERROR && n == 1) || n == 0 || s + n > end)
            return fail(p, RE_INVALID_UTF8, s, strlen(s));
        s += n;
    }
    return true;
}

static bool is_alnum(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int unhex(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* ---- PCRE2-neutral output ---------------------------------------------- */

static void emit(struct parser *p, const char *s)
{
    if (!strbuf_puts(&p->out, s))
        p->out.limit = 0; /* cannot happen: the limit is sized from the input */
}

static void emit_rune(struct parser *p, uint32_t c)
{
    char buf[16];
    snprintf(buf, sizeof buf, "\\x{%x}", (unsigned)c);
    emit(p, buf);
}

/* ---- the tree model ----------------------------------------------------- */

static int imax(int a, int b)
{
    return a > b ? a : b;
}

static int64_t lmax(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t clamp_size(int64_t v)
{
    return v > MAX_SIZE * 4 ? MAX_SIZE * 4 : v;
}

static struct frame *top(struct parser *p)
{
    return &p->frames[p->depth - 1];
}

static void frame_init(struct frame *f, bool capture)
{
    memset(f, 0, sizeof *f);
    f->capture = capture;
}

static void push_item(struct parser *p, struct item it)
{
    struct frame *f = top(p);
    if (f->has_last) {
        f->cat_n++;
        f->cat_size = clamp_size(f->cat_size + f->last_size);
        f->cat_height = imax(f->cat_height, f->last_height);
        f->cat_prod = lmax(f->cat_prod, f->last_prod);
    }
    f->has_last = true;
    f->last_size = it.size;
    f->last_height = it.height;
    f->last_prod = it.prod;
    f->top_real = true;
}

static struct item leaf(void)
{
    return (struct item){1, 1, 1};
}

/* The current alternative as one item (Go's concat()). */
static struct item branch_value(const struct frame *f)
{
    int n = f->cat_n + (f->has_last ? 1 : 0);
    struct item it = {f->cat_size, f->cat_height, f->cat_prod ? f->cat_prod : 1};
    if (f->has_last) {
        it.size = clamp_size(it.size + f->last_size);
        it.height = imax(it.height, f->last_height);
        it.prod = lmax(it.prod, f->last_prod);
    }
    if (n == 0)
        return leaf(); /* OpEmptyMatch */
    if (n >= 2)
        it.height++;
    if (it.size < 1)
        it.size = 1;
    return it;
}

/* Go's parseVerticalBar: close the current alternative. */
static void vertical_bar(struct parser *p)
{
    struct frame *f = top(p);
    struct item b = branch_value(f);
    f->alt_n++;
    f->alt_size = clamp_size(f->alt_size + b.size);
    f->alt_height = imax(f->alt_height, b.height);
    f->alt_prod = lmax(f->alt_prod, b.prod);
    f->cat_n = 0;
    f->cat_size = 0;
    f->cat_height = 0;
    f->cat_prod = 0;
    f->has_last = false;
    f->top_real = false;
}

/* The whole group as one item (Go's alternate()). */
static struct item group_value(const struct frame *f)
{
    struct item b = branch_value(f);
    if (f->alt_n == 0)
        return b;
    struct item it;
    it.size = clamp_size(f->alt_size + b.size + f->alt_n);
    it.height = 1 + imax(f->alt_height, b.height);
    it.prod = lmax(f->alt_prod, b.prod);
    return it;
}

static bool check_limits(struct parser *p, struct item it)
{
    if (it.height > MAX_HEIGHT)
        return fail(p, RE_NESTING_DEPTH, p->whole, strlen(p->whole));
    if (it.size > MAX_SIZE)
        return fail(p, RE_LARGE, p->whole, strlen(p->whole));
    return true;
}

static void open_group(struct parser *p, bool capture)
{
    if (p->depth == p->cap) {
        p->cap *= 2;
        p->frames = xrealloc(p->frames, p->cap * sizeof *p->frames);
    }
    frame_init(&p->frames[p->depth++], capture);
}

static bool close_group(struct parser *p)
{
    if (p->depth < 2)
        return fail(p, RE_UNEXPECTED_PAREN, p->whole, strlen(p->whole));
    struct frame *f = top(p);
    struct item it = group_value(f);
    if (f->capture) {
        it.size = clamp_size(it.size + 2);
        it.height++;
    }
    p->depth--;
    push_item(p, it);
    return check_limits(p, it);
}

/*
 * Go's p.repeat. before points at the operator, after just past it (and
 * past its count); last_repeat is where the previous token's repetition
 * began, or NULL.
 */
enum rep_op { REP_STAR, REP_PLUS, REP_QUEST, REP_COUNT };

static bool repeat(struct parser *p, enum rep_op op, int min, int max, const char *before,
                   const char **after, const char *last_repeat)
{
    bool nongreedy = false;
    if (**after == '?') {
        (*after)++;
        nongreedy = true;
    }
    if (last_repeat)
        return fail(p, RE_INVALID_REPEAT_OP, last_repeat, (size_t)(*after - last_repeat));
    struct frame *f = top(p);
    if (!f->top_real || !f->has_last)
        return fail(p, RE_MISSING_REPEAT_ARG, before, (size_t)(*after - before));

    struct item sub = {f->last_size, f->last_height, f->last_prod};
    struct item it = {0, sub.height + 1, sub.prod};
    switch (op) {
    case REP_STAR:
        it.size = 2 + sub.size;
        emit(p, "*");
        break;
    case REP_PLUS:
        it.size = 1 + sub.size;
        emit(p, "+");
        break;
    case REP_QUEST:
        it.size = 1 + sub.size;
        emit(p, "?");
        break;
    case REP_COUNT: {
        if (max == -1)
            it.size = min == 0 ? 2 + sub.size : 1 + (int64_t)min * sub.size;
        else
            it.size = (int64_t)max * sub.size + (max - min);
        int m = max == -1 ? min : max;
        /* repeatIsValid(re, 1000), only checked when min or max >= 2. */
        if ((min >= 2 || max >= 2) && (int64_t)m * sub.prod > MAX_REPEAT)
            return fail(p, RE_INVALID_REPEAT_SIZE, before, (size_t)(*after - before));
        it.prod = m == 0 ? 1 : (int64_t)m * sub.prod;
        if (it.prod > 1000000)
            it.prod = 1000000;
        emit(p, "*"); /* any quantifier: validity is decided here, not by PCRE2 */
        break;
    }
    }
    if (nongreedy)
        emit(p, "?");
    it.size = clamp_size(it.size < 1 ? 1 : it.size);
    f->last_size = it.size;
    f->last_height = it.height;
    f->last_prod = it.prod;
    return check_limits(p, it);
}

/* ---- escapes and classes ------------------------------------------------ */

/* Go's parseEscape: s starts with a backslash. */
static bool parse_escape(struct parser *p, const char *s, uint32_t *r, const char **rest)
{
    const char *t = s + 1;
    uint32_t c;
    if (*t == '\0')
        return fail(p, RE_TRAILING_BACKSLASH, "", 0);
    if (!next_rune(p, &t, &c))
        return false;
    switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        /* A single non-zero digit is a backreference: not supported. */
        if (*t < '0' || *t > '7')
            break;
        /* fall through */
    case '0': {
        uint32_t v = c - '0';
        for (int i = 1; i < 3; i++) {
            if (*t < '0' || *t > '7')
                break;
            v = v * 8 + (uint32_t)(*t - '0');
            t++;
        }
        *r = v;
        *rest = t;
        return true;
    }
    case 'x': {
        if (*t == '\0')
            break;
        if (!next_rune(p, &t, &c))
            return false;
        if (c == '{') {
            int nhex = 0;
            uint32_t v = 0;
            for (;;) {
                if (*t == '\0')
                    goto invalid;
                if (!next_rune(p, &t, &c))
                    return false;
                if (c == '}')
                    break;
                int d = unhex(c);
                if (d < 0)
                    goto invalid;
                v = v * 16 + (uint32_t)d;
                if (v > MAX_RUNE)
                    goto invalid;
                nhex++;
            }
            if (nhex == 0)
                goto invalid;
            *r = v;
            *rest = t;
            return true;
        }
        int x = unhex(c);
        size_t n;
        c = decode_rune(t, &n);
        if (c == RUNE_ERROR && n == 1)
            return fail(p, RE_INVALID_UTF8, t, strlen(t));
        t += n;
        int y = unhex(c);
        if (x < 0 || y < 0)
            break;
        *r = (uint32_t)(x * 16 + y);
        *rest = t;
        return true;
    }
    case 'a':
        *r = '\a';
        *rest = t;
        return true;
    case 'f':
        *r = '\f';
        *rest = t;
        return true;
    case 'n':
        *r = '\n';
        *rest = t;
        return true;
    case 'r':
        *r = '\r';
        *rest = t;
        return true;
    case 't':
        *r = '\t';
        *rest = t;
        return true;
    case 'v':
        *r = '\v';
        *rest = t;
        return true;
    default:
        if (c < 0x80 && !is_alnum(c)) {
            /* Escaped punctuation is always itself (\_ included). */
            *r = c;
            *rest = t;
            return true;
        }
        break;
    }
invalid:
    return fail(p, RE_INVALID_ESCAPE, s, (size_t)(t - s));
}

/* Perl class escapes \d \D \s \S \w \W: returns the length consumed or 0. */
static size_t perl_class(const char *t)
{
    if (t[0] == '\\' && t[1] && strchr("dDsSwW", t[1]))
        return 2;
    return 0;
}

/*
 * Unicode class names Go 1.25 accepts in \p{...}: Any, ASCII, Assigned, the
 * general categories (with their long aliases) and the Unicode 15.0 scripts.
 * Go 1.25 matches them case-insensitively, ignoring ' ', '_' and '-'.
 */
/* clang-format off */
static const char *const unicode_names[] = {
    "Any", "ASCII", "Assigned", "C", "Cc", "Cf", "Cn", "Co", "Cs", "L", "LC", "Ll", "Lm", "Lo",
    "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi",
    "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
    /* long aliases of the categories */
    "Other", "Control", "cntrl", "Format", "Unassigned", "Private_Use", "Surrogate", "Letter",
    "Cased_Letter", "Lowercase_Letter", "Modifier_Letter", "Other_Letter", "Titlecase_Letter",
    "Uppercase_Letter", "Mark", "Combining_Mark", "Spacing_Mark", "Enclosing_Mark",
    "Nonspacing_Mark", "Number", "Decimal_Number", "digit", "Letter_Number", "Other_Number",
    "Punctuation", "punct", "Connector_Punctuation", "Dash_Punctuation", "Close_Punctuation",
    "Final_Punctuation", "Initial_Punctuation", "Other_Punctuation", "Open_Punctuation", "Symbol",
    "Currency_Symbol", "Modifier_Symbol", "Math_Symbol", "Other_Symbol", "Separator",
    "Line_Separator", "Paragraph_Separator", "Space_Separator",
    /* scripts */
    "Adlam", "Ahom", "Anatolian_Hieroglyphs", "Arabic", "Armenian", "Avestan", "Balinese", "Bamum",
    "Bassa_Vah", "Batak", "Bengali", "Bhaiksuki", "Bopomofo", "Brahmi", "Braille", "Buginese",
    "Buhid", "Canadian_Aboriginal", "Carian", "Caucasian_Albanian", "Chakma", "Cham", "Cherokee",
    "Chorasmian", "Common", "Coptic", "Cuneiform", "Cypriot", "Cypro_Minoan", "Cyrillic",
    "Deseret", "Devanagari", "Dives_Akuru", "Dogra", "Duployan", "Egyptian_Hieroglyphs", "Elbasan",
    "Elymaic", "Ethiopic", "Georgian", "Glagolitic", "Gothic", "Grantha", "Greek", "Gujarati",
    "Gunjala_Gondi", "Gurmukhi", "Han", "Hangul", "Hanifi_Rohingya", "Hanunoo", "Hatran", "Hebrew",
    "Hiragana", "Imperial_Aramaic", "Inherited", "Inscriptional_Pahlavi", "Inscriptional_Parthian",
    "Javanese", "Kaithi", "Kannada", "Katakana", "Kawi", "Kayah_Li", "Kharoshthi",
    "Khitan_Small_Script", "Khmer", "Khojki", "Khudawadi", "Lao", "Latin", "Lepcha", "Limbu",
    "Linear_A", "Linear_B", "Lisu", "Lycian", "Lydian", "Mahajani", "Makasar", "Malayalam",
    "Mandaic", "Manichaean", "Marchen", "Masaram_Gondi", "Medefaidrin", "Meetei_Mayek",
    "Mende_Kikakui", "Meroitic_Cursive", "Meroitic_Hieroglyphs", "Miao", "Modi", "Mongolian",
    "Mro", "Multani", "Myanmar", "Nabataean", "Nag_Mundari", "Nandinagari", "New_Tai_Lue", "Newa",
    "Nko", "Nushu", "Nyiakeng_Puachue_Hmong", "Ogham", "Ol_Chiki", "Old_Hungarian", "Old_Italic",
    "Old_North_Arabian", "Old_Permic", "Old_Persian", "Old_Sogdian", "Old_South_Arabian",
    "Old_Turkic", "Old_Uyghur", "Oriya", "Osage", "Osmanya", "Pahawh_Hmong", "Palmyrene",
    "Pau_Cin_Hau", "Phags_Pa", "Phoenician", "Psalter_Pahlavi", "Rejang", "Runic", "Samaritan",
    "Saurashtra", "Sharada", "Shavian", "Siddham", "SignWriting", "Sinhala", "Sogdian",
    "Sora_Sompeng", "Soyombo", "Sundanese", "Syloti_Nagri", "Syriac", "Tagalog", "Tagbanwa",
    "Tai_Le", "Tai_Tham", "Tai_Viet", "Takri", "Tamil", "Tangsa", "Tangut", "Telugu", "Thaana",
    "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto", "Ugaritic", "Vai", "Vithkuqi", "Wancho",
    "Warang_Citi", "Yezidi", "Yi", "Zanabazar_Square",
};
/* clang-format on */

/* Compare ignoring case, ' ', '_' and '-' (Unicode loose matching, UAX44-LM3). */
static bool loose_equal(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (;;) {
        while (i < alen && (a[i] == ' ' || a[i] == '_' || a[i] == '-'))
            i++;
        while (*b == ' ' || *b == '_' || *b == '-')
            b++;
        if (i == alen || *b == '\0')
            return i == alen && *b == '\0';
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)*b))
            return false;
        i++;
        b++;
    }
}

static bool unicode_table(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof unicode_names / sizeof unicode_names[0]; i++)
        if (loose_equal(name, len, unicode_names[i]))
            return true;
    return false;
}

/*
 * Go's parseUnicodeClass. Returns false on error; *used tells whether t
 * started a Unicode class (then *rest is past it).
 */
static bool parse_unicode_class(struct parser *p, const char *s, bool *used, const char **rest)
{
    *used = false;
    if (s[0] != '\\' || (s[1] != 'p' && s[1] != 'P'))
        return true;
    *used = true;
    bool negated = s[1] == 'P';
    const char *t = s + 2;
    uint32_t c;
    if (!next_rune(p, &t, &c))
        return false;
    const char *seq = s, *name;
    size_t seqlen, namelen;
    if (c != '{') {
        seqlen = (size_t)(t - s);
        name = s + 2;
        namelen = seqlen - 2;
    } else {
        const char *end = strchr(s, '}');
        if (!end) {
            if (!check_utf8(p, s, strlen(s)))
                return false;
            return fail(p, RE_INVALID_CHAR_RANGE, s, strlen(s));
        }
        seqlen = (size_t)(end - s) + 1;
        t = end + 1;
        name = s + 3;
        namelen = (size_t)(end - name);
        if (!check_utf8(p, name, namelen))
            return false;
    }
    if (namelen > 0 && name[0] == '^') {
        negated = !negated;
        name++;
        namelen--;
    }
    if (!unicode_table(name, namelen))
        return fail(p, RE_INVALID_CHAR_RANGE, seq, seqlen);
    emit(p, negated ? "\\P{L}" : "\\p{L}");
    *rest = t;
    return true;
}

static const char *const posix_names[] = {
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
    "lower", "print", "punct", "space", "upper", "word",  "xdigit",
};

/*
 * Go's parseNamedClass: [:alpha:] inside a class. Returns false on error;
 * *used tells whether a class name was consumed.
 */
static bool parse_named_class(struct parser *p, const char *t, bool *used, const char **rest)
{
    *used = false;
    const char *end = strstr(t + 2, ":]");
    if (!end)
        return true;
    size_t len = (size_t)(end - t) + 2; /* "[:name:]" */
    const char *name = t + 2;
    size_t namelen = (size_t)(end - name);
    bool neg = namelen > 0 && name[0] == '^';
    if (neg) {
        name++;
        namelen--;
    }
    for (size_t i = 0; i < sizeof posix_names / sizeof posix_names[0]; i++) {
        if (strlen(posix_names[i]) == namelen && memcmp(posix_names[i], name, namelen) == 0) {
            emit(p, neg ? "[:^" : "[:");
            emit(p, posix_names[i]);
            emit(p, ":]");
            *used = true;
            *rest = t + len;
            return true;
        }
    }
    return fail(p, RE_INVALID_CHAR_RANGE, t, len);
}

/* Go's parseClassChar. */
static bool parse_class_char(struct parser *p, const char *s, const char *whole, uint32_t *r,
                             const char **rest)
{
    if (*s == '\0')
        return fail(p, RE_MISSING_BRACKET, whole, strlen(whole));
    if (*s == '\\')
        return parse_escape(p, s, r, rest);
    const char *t = s;
    if (!next_rune(p, &t, r))
        return false;
    *rest = t;
    return true;
}

/* Go's parseClass: s starts with '['. */
static bool parse_class(struct parser *p, const char *s, const char **rest)
{
    const char *t = s + 1;
    emit(p, "[");
    if (*t == '^') {
        emit(p, "^");
        t++;
    }
    bool first = true;
    while (*t == '\0' || *t != ']' || first) {
        first = false;
        bool used;
        if (t[0] == '[' && t[1] == ':' && t[2] != '\0') {
            if (!parse_named_class(p, t, &used, &t))
                return false;
            if (used)
                continue;
        }
        if (!parse_unicode_class(p, t, &used, &t))
            return false;
        if (used)
            continue;
        size_t n = perl_class(t);
        if (n) {
            char esc[3] = {t[0], t[1], '\0'};
            emit(p, esc);
            t += n;
            continue;
        }
        const char *rng = t;
        uint32_t lo, hi;
        if (!parse_class_char(p, t, s, &lo, &t))
            return false;
        hi = lo;
        if (t[0] == '-' && t[1] != '\0' && t[1] != ']') {
            t++;
            if (!parse_class_char(p, t, s, &hi, &t))
                return false;
            if (hi < lo)
                return fail(p, RE_INVALID_CHAR_RANGE, rng, (size_t)(t - rng));
        }
        emit_rune(p, lo);
        if (hi != lo) {
            emit(p, "-");
            emit_rune(p, hi);
        }
    }
    emit(p, "]");
    *rest = t + 1;
    return true;
}

/* ---- groups and flags ----------------------------------------------------- */

static bool valid_capture_name(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] != '_' && !is_alnum((unsigned char)name[i]))
            return false;
    return true;
}

/* Go's parsePerlFlags: s starts with "(?". */
static bool parse_perl_flags(struct parser *p, const char *s, const char **rest)
{
    size_t slen = strlen(s);
    bool starts_p = slen > 4 && s[2] == 'P' && s[3] == '<';
    bool starts_name = slen > 3 && s[2] == '<';
    if (starts_p || starts_name) {
        size_t start = starts_p ? 4 : 3;
        const char *end = strchr(s, '>');
        if (!end) {
            if (!check_utf8(p, s, slen))
                return false;
            return fail(p, RE_INVALID_NAMED_CAPTURE, s, slen);
        }
        const char *name = s + start; /* end >= name: the prefix holds no '>' */
        size_t namelen = (size_t)(end - name);
        if (!check_utf8(p, name, namelen))
            return false;
        if (!valid_capture_name(name, namelen))
            return fail(p, RE_INVALID_NAMED_CAPTURE, s, (size_t)(end - s) + 1);
        open_group(p, true);
        emit(p, "(");
        *rest = end + 1;
        return true;
    }

    const char *t = s + 2;
    int sign = 1;
    bool saw_flag = false;
    while (*t) {
        uint32_t c;
        if (!next_rune(p, &t, &c))
            return false;
        switch (c) {
        case 'i':
        case 'm':
        case 's':
        case 'U':
            saw_flag = true;
            continue;
        case '-':
            if (sign < 0)
                goto bad;
            sign = -1;
            saw_flag = false;
            continue;
        case ':':
        case ')':
            if (sign < 0 && !saw_flag)
                goto bad;
            if (c == ':') {
                open_group(p, false);
                emit(p, "(?:");
            }
            *rest = t;
            return true;
        default:
            goto bad;
        }
    }
bad:
    return fail(p, RE_INVALID_PERL_OP, s, (size_t)(t - s));
}

/* ---- repeat counts -------------------------------------------------------- */

/* Go's parseInt: no leading zeros; -1 when the value passes 1e8. */
static bool parse_int(const char **s, int *n)
{
    const char *t = *s;
    if (*t < '0' || *t > '9')
        return false;
    if (t[0] == '0' && t[1] >= '0' && t[1] <= '9')
        return false;
    long v = 0;
    while (*t >= '0' && *t <= '9') {
        if (v >= 100000000)
            v = -1;
        else if (v >= 0)
            v = v * 10 + (*t - '0');
        t++;
    }
    *n = (int)v;
    *s = t;
    return true;
}

/* Go's parseRepeat: {n}, {n,}, {n,m}. */
static bool parse_repeat(const char *s, int *min, int *max, const char **rest)
{
    const char *t = s + 1;
    if (!parse_int(&t, min))
        return false;
    if (*t == '\0')
        return false;
    if (*t != ',') {
        *max = *min;
    } else {
        t++;
        if (*t == '\0')
            return false;
        if (*t == '}') {
            *max = -1;
        } else {
            if (!parse_int(&t, max))
                return false;
            if (*max < 0)
                *min = -1;
        }
    }
    if (*t != '}')
        return false;
    *rest = t + 1;
    return true;
}

/* ---- the main loop ---------------------------------------------------------- */

static bool parse(struct parser *p, const char *s)
{
    const char *t = s;
    const char *last_repeat = NULL;
    while (*t) {
        const char *rep = NULL;
        switch (*t) {
        case '(':
            if (t[1] == '?') {
                if (!parse_perl_flags(p, t, &t))
                    return false;
                break;
            }
            open_group(p, true);
            emit(p, "(");
            t++;
            break;
        case '|':
            vertical_bar(p);
            emit(p, "|");
            t++;
            break;
        case ')':
            if (!close_group(p))
                return false;
            emit(p, ")");
            t++;
            break;
        case '^':
        case '$':
            push_item(p, leaf());
            emit(p, "(?:)");
            t++;
            break;
        case '.':
            push_item(p, leaf());
            emit(p, ".");
            t++;
            break;
        case '[':
            if (!parse_class(p, t, &t))
                return false;
            push_item(p, leaf());
            break;
        case '*':
        case '+':
        case '?': {
            const char *before = t;
            enum rep_op op = *t == '*' ? REP_STAR : *t == '+' ? REP_PLUS : REP_QUEST;
            t++;
            if (!repeat(p, op, 0, 0, before, &t, last_repeat))
                return false;
            rep = before;
            break;
        }
        case '{': {
            const char *before = t, *after;
            int min, max;
            if (!parse_repeat(t, &min, &max, &after)) {
                push_item(p, leaf()); /* not a repeat: '{' is a literal */
                emit_rune(p, '{');
                t++;
                break;
            }
            if (min < 0 || min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max))
                return fail(p, RE_INVALID_REPEAT_SIZE, before, (size_t)(after - before));
            t = after;
            if (!repeat(p, REP_COUNT, min, max, before, &t, last_repeat))
                return false;
            rep = before;
            break;
        }
        case '\\': {
            char c1 = t[1];
            if (c1 == 'A' || c1 == 'z' || c1 == 'b' || c1 == 'B') {
                push_item(p, leaf());
                emit(p, "(?:)");
                t += 2;
                break;
            }
            if (c1 == 'C') /* any byte: not supported */
                return fail(p, RE_INVALID_ESCAPE, t, 2);
            if (c1 == 'Q') {
                const char *lit = t + 2;
                const char *end = strstr(lit, "\\E");
                const char *stop = end ? end : lit + strlen(lit);
                while (lit < stop) {
                    size_t n;
                    uint32_t c = decode_rune(lit, &n);
                    if (c == RUNE_ERROR && n == 1)
                        return fail(p, RE_INVALID_UTF8, lit, (size_t)(stop - lit));
                    push_item(p, leaf());
                    emit_rune(p, c);
                    lit += n;
                }
                t = end ? end + 2 : stop;
                break;
            }
            bool used;
            if (!parse_unicode_class(p, t, &used, &t))
                return false;
            if (used) {
                push_item(p, leaf());
                break;
            }
            size_t n = perl_class(t);
            if (n) {
                char esc[3] = {t[0], t[1], '\0'};
                emit(p, esc);
                push_item(p, leaf());
                t += n;
                break;
            }
            uint32_t c;
            if (!parse_escape(p, t, &c, &t))
                return false;
            push_item(p, leaf());
            emit_rune(p, c);
            break;
        }
        default: {
            uint32_t c;
            if (!next_rune(p, &t, &c))
                return false;
            push_item(p, leaf());
            emit_rune(p, c);
            break;
        }
        }
        last_repeat = rep;
    }
    if (p->depth != 1)
        return fail(p, RE_MISSING_PAREN, s, strlen(s));
    return check_limits(p, group_value(top(p)));
}

/* Append s[0..len) with invalid UTF-8 replaced by U+FFFD (as Go's JSON does). */
static void put_sanitized(struct strbuf *b, const char *s, size_t len)
{
    const char *end = s + len;
    bool ok = true;
    while (s < end && ok) {
        size_t n;
        uint32_t c = decode_rune(s, &n);
        if ((c == RUNE_ERROR && n == 1) || n == 0 || s + n > end) {
            ok = strbuf_puts(b, "\xEF\xBF\xBD");
            s++;
        } else {
            ok = strbuf_append(b, s, n);
            s += n;
        }
    }
}

/* Copy src into dst[0..dstlen) without cutting a UTF-8 sequence. */
static void copy_utf8(char *dst, size_t dstlen, const char *src)
{
    if (!dst || dstlen == 0)
        return;
    size_t n = strlen(src);
    if (n >= dstlen) {
        n = dstlen - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* PCRE2 cross-check of the neutral form; on failure msg gets PCRE2's reason. */
static bool pcre2_check(const char *neutral, char *msg, size_t msglen)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        copy_utf8(msg, msglen, "out of memory");
        return false;
    }
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALLOW_SURROGATE_ESCAPES);
    int errcode = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)neutral, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_DUPNAMES, &errcode, &off, cc);
    pcre2_compile_context_free(cc);
    if (code) {
        pcre2_code_free(code);
        return true;
    }
    /* Go's own size and nesting limits were applied above; PCRE2's are smaller. */
    if (errcode == PCRE2_ERROR_PATTERN_TOO_LARGE ||
        errcode == PCRE2_ERROR_PARENTHESES_NEST_TOO_DEEP || errcode == PCRE2_ERROR_HEAP_FAILED)
        return true;
    PCRE2_UCHAR buf[256];
    if (pcre2_get_error_message(errcode, buf, sizeof buf) < 0)
        copy_utf8(msg, msglen, "invalid pattern");
    else
        copy_utf8(msg, msglen, (const char *)buf);
    return false;
}

bool regex_re2_valid(const char *pattern, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!pattern)
        pattern = "";
    size_t len = strlen(pattern);
    struct parser p = {.whole = pattern, .cap = 8};
    p.frames = xmalloc(p.cap * sizeof *p.frames);
    frame_init(&p.frames[0], false);
    p.depth = 1;
    strbuf_init(&p.out, len * 12 + 64);

    bool ok = parse(&p, pattern);
    struct strbuf msg;
    strbuf_init(&msg, len * 4 + 256);
    if (!ok) {
        bool w = strbuf_printf(&msg, "error parsing regexp: %s: `", code_text[p.code]);
        put_sanitized(&msg, p.ex, p.exlen);
        w = w && strbuf_puts(&msg, "`");
        (void)w; /* sized for the input */
    } else {
        char pmsg[256];
        ok = pcre2_check(strbuf_str(&p.out), pmsg, sizeof pmsg);
        if (!ok) {
            bool w = strbuf_printf(&msg, "error parsing regexp: %s: `", pmsg);
            put_sanitized(&msg, pattern, len);
            w = w && strbuf_puts(&msg, "`");
            (void)w;
        }
    }
    if (!ok && why && whylen)
        copy_utf8(why, whylen, strbuf_str(&msg));
    strbuf_cleanup(&msg);
    strbuf_cleanup(&p.out);
    free(p.frames);
    return ok;
}

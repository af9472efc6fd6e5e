/*
 * Unit tests for src/util/base64.c (RFC 4648 vectors, strictness) and
 * src/util/sha256.c (NIST FIPS 180-4 example vectors plus padding-boundary
 * lengths checked against Python's hashlib).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/base64.h"
#include "util/sha256.h"
#include "util/xalloc.h"

/* ---- base64 ---- */

struct b64_case {
    const char *plain;
    size_t plain_len;
    const char *encoded;
};

static const struct b64_case b64_cases[] = {
    /* RFC 4648 section 10 */
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    /* the alphabet's last two characters and NUL bytes */
    {"\xfb\xff\xbf", 3, "+/+/"},
    {"\0\0\0", 3, "AAAA"},
    {"\0", 1, "AA=="},
    /* kubernetes-api.md §2.3 example patch */
    {"[{\"op\":\"add\",\"path\":\"/metadata/labels/tier\",\"value\":\"db\"}]", 58,
     "W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscy90aWVyIiwidmFsdWUiOiJkYiJ9XQ=="},
};

static void test_base64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof b64_cases / sizeof b64_cases[0]; i++) {
        const struct b64_case *c = &b64_cases[i];
        char *enc = base64_encode(c->plain, c->plain_len);
        assert_string_equal(enc, c->encoded);
        free(enc);

        size_t n = 99;
        unsigned char *dec = base64_decode(c->encoded, strlen(c->encoded), &n);
        assert_non_null(dec);
        assert_int_equal(n, c->plain_len);
        if (n)
            assert_memory_equal(dec, c->plain, n);
        assert_int_equal(dec[n], 0); /* NUL-terminated for convenience */
        free(dec);
    }
}

struct b64_bad {
    const char *input;
    const char *why;
};

static const struct b64_bad b64_bad_cases[] = {
    {"Zg", "unpadded (Go: illegal base64 data)"},
    {"Zm8", "unpadded"},
    {"Zg=", "short padding"},
    {"Zm9vYg", "unpadded after a full quantum"},
    {"Zm9v\n", "newline"},
    {"Zm9v\nYmFy", "embedded newline"},
    {"Zm9v YmFy", "space"},
    {" Zm9v", "leading space"},
    {"Z===", "three padding characters"},
    {"====", "only padding"},
    {"=Zm9", "padding first"},
    {"Zg==Zg==", "padding in the middle"},
    {"Zm=v", "padding inside a quantum"},
    {"Zm9-", "URL-safe alphabet"},
    {"Zm9_", "URL-safe alphabet"},
    {"Zm9v*A==", "not in the alphabet"},
    {"[{\"op\":\"add\"}]", "raw JSON (Go: illegal base64 data at input byte 0)"},
    {"\xc3\xa9\xc3\xa9", "non-ASCII"},
};

static void test_base64_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof b64_bad_cases / sizeof b64_bad_cases[0]; i++) {
        const struct b64_bad *c = &b64_bad_cases[i];
        size_t n = 99;
        unsigned char *dec = base64_decode(c->input, strlen(c->input), &n);
        if (dec)
            fail_msg("accepted \"%s\" (%s)", c->input, c->why);
        assert_int_equal(n, 0);
    }
    /* NULL input */
    size_t n = 5;
    assert_null(base64_decode(NULL, 4, &n));
    /* an embedded NUL is not in the alphabet */
    assert_null(base64_decode("Zm\0v", 4, &n));
}

static void test_base64_non_canonical(void **state)
{
    (void)state;
    /* Like Go's StdEncoding, unused low bits before the padding are ignored. */
    size_t n = 0;
    unsigned char *dec = base64_decode("Zh==", 4, &n);
    assert_non_null(dec);
    assert_int_equal(n, 1);
    assert_int_equal(dec[0], 'f');
    free(dec);
}

static void test_base64_round_trip(void **state)
{
    (void)state;
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof buf; len++) {
        char *enc = base64_encode(buf, len);
        assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
        size_t n = 0;
        unsigned char *dec = base64_decode(enc, strlen(enc), &n);
        assert_non_null(dec);
        assert_int_equal(n, len);
        if (len)
            assert_memory_equal(dec, buf, len);
        free(dec);
        free(enc);
    }
}

/* ---- sha256 ---- */

struct sha_case {
    const char *name;
    char fill; /* when non-zero: the message is `repeat` copies of fill */
    size_t repeat;
    const char *msg; /* otherwise this string */
    const char *hex;
};

static const struct sha_case sha_cases[] = {
    /* NIST FIPS 180-4 examples (csrc.nist.gov SHA256.pdf, SHA2_Additional.pdf) */
    {"empty", 0, 0, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", 0, 0, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"448 bits", 0, 0, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"896 bits", 0, 0,
     "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmn"
     "opqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"million a", 'a', 1000000, NULL,
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    /* padding boundaries: one vs two final blocks */
    {"a x1", 'a', 1, NULL, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
    {"a x55", 'a', 55, NULL, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
    {"a x56", 'a', 56, NULL, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
    {"a x57", 'a', 57, NULL, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"},
    {"a x63", 'a', 63, NULL, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
    {"a x64", 'a', 64, NULL, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    {"a x65", 'a', 65, NULL, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
    {"a x111", 'a', 111, NULL, "6374f73208854473827f6f6a3f43b1f53eaa3b82c21c1a6d69a2110b2a79baad"},
    {"a x119", 'a', 119, NULL, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
    {"a x120", 'a', 120, NULL, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    {"a x127", 'a', 127, NULL, "c57e9278af78fa3cab38667bef4ce29d783787a2f731d4e12200270f0c32320a"},
    {"a x128", 'a', 128, NULL, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
};

static void test_sha256_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sha_cases / sizeof sha_cases[0]; i++) {
        const struct sha_case *c = &sha_cases[i];
        char *owned = NULL;
        const char *msg = c->msg;
        size_t len = msg ? strlen(msg) : c->repeat;
        if (!msg) {
            owned = xmalloc(c->repeat + 1);
            memset(owned, c->fill, c->repeat);
            msg = owned;
        }
        char hex[65];
        memset(hex, 'x', sizeof hex);
        sha256_hex(msg, len, hex);
        if (strcmp(hex, c->hex) != 0)
            fail_msg("%s: got %s want %s", c->name, hex, c->hex);
        free(owned);
    }
}

static void test_sha256_binary(void **state)
{
    (void)state;
    unsigned char all[256];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (unsigned char)i;
    uint8_t d[32];
    sha256(all, sizeof all, d);
    /* 40aff2e9... = hashlib.sha256(bytes(range(256))) */
    static const uint8_t want[4] = {0x40, 0xaf, 0xf2, 0xe9};
    assert_memory_equal(d, want, 4);
    char hex[65];
    sha256_hex(all, sizeof all, hex);
    assert_string_equal(hex, "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880");
    /* NULL with length 0 is the empty message */
    sha256_hex(NULL, 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_base64_non_canonical),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

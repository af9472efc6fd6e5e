/* meshmetric-operator: wiring only. Each subcommand lives in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/xalloc.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"inject", cli_inject, "print a pod (or workload) with the metrics patch applied"},
    {"explain", cli_explain, "show matched policies, the effective config and its origins"},
    {"validate", cli_validate, "validate MeshMetric and Mesh resources with Kuma's rules"},
    {"serve", cli_serve, "run the HTTPS admission webhook"},
    {"certs", cli_certs, "generate a CA and a webhook serving certificate"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: meshmetric-operator <command> [options]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
    fprintf(f, "\nRun 'meshmetric-operator <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    xalloc_install_json();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("meshmetric-operator %s\n", MM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "meshmetric-operator: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}

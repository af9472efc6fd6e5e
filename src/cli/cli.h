/*
 * Subcommands of the meshmetric-operator binary. Each takes the arguments
 * after its name and returns the process exit code:
 * 0 success, 1 "invalid" (validate found problems), 2 usage or input error.
 */
#ifndef MM_CLI_CLI_H
#define MM_CLI_CLI_H

int cli_inject(int argc, char **argv);   /* cli/offline.c */
int cli_explain(int argc, char **argv);  /* cli/offline.c */
int cli_validate(int argc, char **argv); /* cli/offline.c */
int cli_serve(int argc, char **argv);    /* cli/serve.c */
int cli_certs(int argc, char **argv);    /* cli/certs.c */

#endif

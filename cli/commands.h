/* SPDX-License-Identifier: MIT */
#ifndef XR_CLI_COMMANDS_H
#define XR_CLI_COMMANDS_H

/* Each subcommand: argv[0] is the subcommand's name. Returns the exit code. */
int xr_cmd_engine(int argc, char **argv);
int xr_cmd_info(int argc, char **argv);
int xr_cmd_tail(int argc, char **argv);
int xr_cmd_games(int argc, char **argv);
int xr_cmd_agent(int argc, char **argv);
int xr_cmd_setup(int argc, char **argv);
int xr_cmd_clean(int argc, char **argv);
int xr_cmd_stat(int argc, char **argv);
int xr_cmd_top(int argc, char **argv);
int xr_cmd_bench(int argc, char **argv);
int xr_cmd_profile(int argc, char **argv);
int xr_cmd_table(int argc, char **argv);
int xr_cmd_bridge(int argc, char **argv);

/* Opens engine `name`'s arena read-only for tool `cmd` (cli/open_arena.c):
 * 0, or an exit code after one line on stderr saying why and what to do. */
struct xr_arena;
int xr_cli_open_arena(const char *cmd, const char *name, struct xr_arena **a);

#endif

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

#endif

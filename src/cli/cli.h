/* cli.h — the subcommands of the tokenmill binary and their shared helpers.
 *
 * main.c dispatches `tokenmill <command> [options] [args]` to tm_cmd_<name>,
 * which parses its own options with getopt_long (GNU permutation, so options
 * may come before or after positional arguments) and returns a process exit
 * code: a sysexits.h value from tm_status_exit_code (the table in
 * util/status.h: 0 ok, 64 usage, 65 data, 69 unavailable, 70 internal,
 * 74 I/O, 75 stopped with work left).
 */
#ifndef TM_CLI_H
#define TM_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "util/status.h"
#include "util/version.h"

int tm_cmd_submit(int argc, char **argv);
int tm_cmd_status(int argc, char **argv);
int tm_cmd_cancel(int argc, char **argv);
int tm_cmd_retry(int argc, char **argv);
int tm_cmd_results(int argc, char **argv);
int tm_cmd_export(int argc, char **argv);
int tm_cmd_tokenize(int argc, char **argv);
int tm_cmd_generate(int argc, char **argv);
int tm_cmd_bench(int argc, char **argv);
int tm_cmd_run(int argc, char **argv);
int tm_cmd_demo(int argc, char **argv);
int tm_cmd_prices(int argc, char **argv);
int tm_cmd_report(int argc, char **argv);
int tm_cmd_batch(int argc, char **argv);
int tm_cmd_shard(int argc, char **argv);
int tm_cmd_merge(int argc, char **argv);

/* The queue path: --db value if given, else $TOKENMILL_DB, else ./tokenmill.db */
const char *tm_cli_db_path(const char *db_flag);

/* TM_ERR_USAGE unless path names a database file: ":memory:", "" (SQLite's
 * temporary database) and "file:" URIs (mode=memory, vfs=...) are refused, as
 * a queue that keeps nothing would let submit succeed and lose the job.
 * Every command calls it on tm_cli_db_path's result before opening. */
tm_status tm_cli_db_check(const char *path, tm_err *err);

/* TM_ERR_USAGE when writing out_path would write over the queue database db
 * or its -wal / -shm / -journal files (same file, or the same path once
 * links and relative parts are resolved); TM_OK otherwise ("-" included). */
tm_status tm_cli_output_not_db(const char *out_path, const char *db, tm_err *err);

/* TM_ERR_USAGE "OPT: not valid UTF-8 (byte N)" unless s is valid UTF-8: job
 * names and metadata keys/values are stored as JSON text and must be refused
 * at the edge (submit calls it on --name, --model and --metadata). */
tm_status tm_cli_check_text(const char *opt, const char *s, tm_err *err);

/* s made safe for a terminal (human output; JSON output stays JSON):
 * control characters (C0, DEL, C1, U+2028/9) become \xNN / \uNNNN, invalid
 * UTF-8 bytes \xNN and a backslash \\; written to out (at most outsz - 1
 * bytes, cut only between characters) and returned. NULL reads as "". */
const char *tm_cli_printable(const char *s, char *out, size_t outsz);

/* Print "tokenmill CMD: message" to stderr and return the exit code for s. */
int tm_cli_fail(const char *cmd, tm_status s, const tm_err *err);

/* Print "tokenmill CMD: <formatted>" plus a --help hint; return 64. */
int tm_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Hex SHA-256 of the bytes of files paths[0..n) read in order (what
 * submit stores as jobs.input_sha256, and `tokenmill batch` looks a
 * submission up by); "" when one of them is "-" or not a regular file
 * (stdin, a pipe: the submission reads it once). */
tm_status tm_cli_files_sha256(char *const *paths, int n, char hex[65], tm_err *err);

/* Reset getopt state before a command parses its argv. */
void tm_cli_getopt_reset(void);

/* Parse a non-negative integer option value; 64-style usage error if bad. */
tm_status tm_cli_parse_long(const char *opt, const char *val, long long lo, long long hi,
                            long long *out, tm_err *err);

/* Parse a byte size with an optional binary K/M/G suffix (512M, 4G, 4GiB). */
tm_status tm_cli_parse_size(const char *opt, const char *val, int64_t *out, tm_err *err);

#endif

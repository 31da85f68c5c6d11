/* bench.h — `tokenmill bench <what>`: benchmark programs (not tests).
 *
 * Each prints what it measured and the exact command to reproduce it.
 */
#ifndef TM_BENCH_H
#define TM_BENCH_H

int tm_bench_submit(int argc, char **argv);   /* bench submit --lines N        */
int tm_bench_tokenize(int argc, char **argv); /* bench tokenize --tokenizer DIR */
int tm_bench_forward(int argc, char **argv);  /* bench forward --model DIR     */
int tm_bench_engine(int argc, char **argv);   /* bench engine --model DIR      */

#endif

/* notice.h — cloud preemption notices, polled in the background.
 *
 * Spot / preemptible VMs announce their end a little before it: AWS turns
 * http://169.254.169.254/latest/meta-data/spot/instance-action from 404 into
 * {"action":"terminate","time":"2026-11-23T12:00:00Z"} about 2 minutes ahead
 * (IMDSv2: a PUT /latest/api/token first, its token in a header; when the PUT
 * fails the GET goes out without one, as IMDSv1); GCP's
 * http://metadata.google.internal/computeMetadata/v1/instance/preempted
 * (header Metadata-Flavor: Google) turns from FALSE into TRUE about 30 s
 * ahead. `tokenmill run --preemption-notice SPEC` starts a poller thread that
 * asks every period (5 s) and never blocks the run loop: tm_notice_check()
 * only reads what the thread last saw. Once seen, a notice stays seen; later
 * polls can only bring its deadline closer.
 *
 * SPEC: "aws" | "gcp" | "http://..." / "https://..." (any URL: 200 with a
 * body the parser below recognises = notice; 404, an empty body or "FALSE" =
 * no notice) | "file:PATH" or a path starting with / or . (the file appearing
 * = notice; its content, when tm_notice_parse_body recognises it, sets the
 * deadline; empty or unrecognised content = now+30 s; "FALSE" = no notice).
 * Tests point "aws" / "gcp" at a local server through the environment
 * variables TOKENMILL_AWS_METADATA_URL / TOKENMILL_GCP_METADATA_URL (base URL,
 * e.g. http://127.0.0.1:8099).
 *
 * HTTP through libcurl (connect + total timeout 2 s, no proxy, no redirects,
 * bodies capped at TM_NOTICE_MAX_BODY); a failing endpoint or an
 * unrecognised body is "no notice" (logged once to stderr until it recovers),
 * never an error of the run.
 */
#ifndef TM_NOTICE_H
#define TM_NOTICE_H

#include <stddef.h>
#include "util/status.h"

#define TM_NOTICE_MAX_BODY 65536   /* longer answers / files are not read */
#define TM_NOTICE_DEFAULT_LEAD 30.0  /* "TRUE", GCP, an empty notice file: now + 30 s */
#define TM_NOTICE_AWS_LEAD 120.0     /* AWS action with an unreadable time: now + 2 min */

typedef struct tm_notice tm_notice;

/* Parse spec and start polling every period_s seconds (<= 0: 5 s). The
 * first poll happens at once. TM_ERR_USAGE for a spec that means nothing. */
tm_status tm_notice_start(const char *spec, double period_s, tm_notice **out, tm_err *err);
void tm_notice_stop(tm_notice *n); /* joins the thread; NULL is a no-op */

/* Non-blocking. 1 when a notice has been seen: *deadline = unix time the
 * machine goes away (the AWS "time"; for GCP's TRUE, 30 s after the last
 * poll that still said FALSE, the earliest the notice can have appeared, or
 * after the first sight when the very first poll sees it; ...), and
 * kind = "aws" | "gcp" | "url" | "file" (for runs.end_reason 'notice:KIND').
 * 0 otherwise (and for n == NULL). deadline and kind may be NULL. */
int tm_notice_check(tm_notice *n, double *deadline, const char **kind);

/* The body parser (hostile input: any bytes, any length; body need not be
 * NUL-terminated). Surrounding ASCII whitespace is ignored. Recognised:
 *   "TRUE" / "FALSE" (any case)      -> notice at now + 30 s / no notice
 *   a decimal number of seconds left -> notice at now + max(0, x); at most 1e9
 *   the AWS JSON object with a non-empty string "action" -> notice at its
 *     "time" (strict ISO-8601 UTC: YYYY-MM-DDTHH:MM:SS[.fraction]Z, years
 *     1970-9999, real calendar dates), or now + 120 s when the time is absent
 *     or unreadable
 * Returns 1 (notice, *deadline set) or 0 (no notice: "FALSE", empty, any NUL
 * byte, len > TM_NOTICE_MAX_BODY, or anything unrecognised; *deadline
 * untouched). */
int tm_notice_parse_body(const char *body, size_t len, double now, double *deadline);

/* The strict ISO-8601 UTC parser used for the AWS "time" (exposed for tests):
 * 1 and *unix_time on success, 0 otherwise. s need not be NUL-terminated. */
int tm_notice_parse_iso8601(const char *s, size_t len, double *unix_time);

#endif

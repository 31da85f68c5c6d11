/* version.h — the tokenmill version string, one place for every layer.
 *
 * Lower layers (backend, output, worker) need the version for reports and
 * response metadata; they include this header, never cli/cli.h.
 */
#ifndef TM_VERSION_H
#define TM_VERSION_H

#define TM_VERSION "0.1.0"

#endif

/* hostile-c: a C mapper that misbehaves on purpose, steered by its config (`mode=...`), for
 * tests/e2e/c_plugins.rs: the host must contain a C plugin as it contains a Rust one.
 *   print  writes two lines to stdout and stderr (wasi-libc through the preview 1 adapter),
 *          then passes the batch through
 *   abort  calls abort() (a trap)
 *   spin   loops forever (the CPU time limit)
 *   grow   allocates memory forever, touching it (the memory limit) */
#define WEIR_WORLD "mapper"
#include "weir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char mode[16];
void *volatile kept;

int weir_init(const weir_config *config, weir_error *err) {
    static const char *const known[] = {"mode"};
    const char *m;
    if (weir_config_reject_unknown(config, known, 1, err) || weir_config_require(config, "mode", &m, err)) return -1;
    snprintf(mode, sizeof mode, "%s", m);
    return 0;
}

int weir_output_schema(const weir_schema *input, weir_schema *out, weir_error *err) {
    (void)err;
    *out = weir_schema_copy(input);
    return 0;
}

int weir_map_batch(const weir_batch *input, weir_output *out, weir_error *err) {
    if (!strcmp(mode, "print")) {
        printf("hello from C: %zu rows\n", input->num_rows);
        fflush(stdout);
        fprintf(stderr, "and on stderr\n");
    } else if (!strcmp(mode, "abort")) {
        abort();
    } else if (!strcmp(mode, "spin")) {
        for (volatile unsigned long i = 0;; i++) {
        }
    } else if (!strcmp(mode, "grow")) {
        /* Each block points at the previous one, from a global: nothing can be optimised away. */
        for (;;) {
            void **p = malloc(1 << 20);
            if (!p) return weir_fail(err, "malloc returned NULL");
            memset(p, 1, 1 << 20);
            *p = kept;
            kept = p;
        }
    } else {
        return weir_fail(err, "unknown mode `%s`", mode);
    }
    weir_output_pass_through_all(out);
    return 0;
}

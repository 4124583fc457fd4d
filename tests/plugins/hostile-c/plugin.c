/* hostile-c: a C mapper that misbehaves on purpose, steered by its config (`mode=...`), for
 * tests/e2e/c_plugins.rs: the host must contain a C plugin as it contains a Rust one.
 *   print  writes two lines to stdout and stderr (wasi-libc through the preview 1 adapter),
 *          then passes the batch through
 *   abort  calls abort() (a trap)
 *   spin   loops forever (the CPU time limit)
 *   grow   allocates memory forever, touching it (the memory limit)
 *   filter not hostile: keeps the rows whose `id` is not "b" and adds `len` (int, its length),
 *          through weir_output_select */
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
    *out = weir_schema_copy(input);
    return strcmp(mode, "filter") ? 0 : weir_schema_add(out, "len", WEIR_INT32, false, err);
}

static int filter(const weir_batch *input, weir_output *out, weir_error *err) {
    const weir_column *id = weir_batch_column(input, "id", WEIR_UTF8, err);
    if (!id) return -1;
    uint32_t *keep = malloc((input->num_rows + 1) * sizeof *keep);
    size_t n = 0;
    for (size_t i = 0; i < input->num_rows; i++) {
        size_t len;
        const uint8_t *v = weir_bytes(id, i, &len);
        if (!(len == 1 && v[0] == 'b')) keep[n++] = (uint32_t)i;
    }
    int rc = weir_output_select(out, keep, n, err);
    weir_builder lens;
    weir_builder_init(&lens, WEIR_INT32, n);
    for (size_t k = 0; k < n; k++) weir_push_i32(&lens, (int32_t)(id->offsets[keep[k] + 1] - id->offsets[keep[k]]));
    free(keep);
    weir_output_pass_through_all(out);
    if (rc || weir_output_column(out, "len", &lens, err)) {
        weir_builder_free(&lens);
        return -1;
    }
    return 0;
}

int weir_map_batch(const weir_batch *input, weir_output *out, weir_error *err) {
    if (!strcmp(mode, "print")) {
        printf("hello from C: %zu rows\n", input->num_rows);
        fflush(stdout);
        fprintf(stderr, "and on stderr\n");
    } else if (!strcmp(mode, "filter")) {
        return filter(input, out, err);
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

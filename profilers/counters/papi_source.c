/* profilers/counters/papi_source.c — the PAPI counter source of mt_counters.
 *
 * What it is for: turning an event list ("default,sde:::memtrade::live_bytes.weights")
 * into started PAPI eventsets, one per component, with every event the machine cannot
 * count kept in the list as unavailable with PAPI's own reason (PAPI_strerror plus the
 * component's disabled_reason), and reading them.
 * What it is not for: perf_event_open (perf_source.c), regions (counters.c).
 *
 * Global state: PAPI_library_init and PAPI_thread_init are process-wide in PAPI itself;
 * they run once under pthread_once and their outcome is kept in two statics written only
 * inside that once-routine.
 */
#include "counters_internal.h"

#include <papi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t papi_once = PTHREAD_ONCE_INIT;
static int papi_ready;             /* written once, in papi_init_once */
static char papi_init_reason[256]; /* written once, in papi_init_once */

static unsigned long thread_id(void)
{
    return (unsigned long)pthread_self();
}

static const char *papi_msg(int rc)
{
    const char *s = PAPI_strerror(rc);
    return s ? s : "unknown PAPI error";
}

static void papi_init_once(void)
{
    if (!PAPI_is_initialized()) {
        int rc = PAPI_library_init(PAPI_VER_CURRENT);
        if (rc != PAPI_VER_CURRENT) {
            snprintf(papi_init_reason, sizeof papi_init_reason, "PAPI_library_init: %s",
                     rc > 0 ? "PAPI library version differs from the header" : papi_msg(rc));
            return;
        }
    }
    int rc = PAPI_thread_init(thread_id);
    if (rc != PAPI_OK) {
        snprintf(papi_init_reason, sizeof papi_init_reason, "PAPI_thread_init: %s", papi_msg(rc));
        return;
    }
    papi_ready = 1;
}

/* ------------------------------------------------------------ the event list */

struct name_list {
    char (*v)[MT_COUNTERS_NAME_MAX];
    size_t n, cap;
    int default_fp; /* PAPI_FP_OPS came from "default" */
};

static int list_push(struct name_list *l, const char *s, size_t len, char *err, size_t errlen)
{
    if (len >= MT_COUNTERS_NAME_MAX)
        return mt_ctr_err(err, errlen, "counter event name too long (%zu bytes, max %d): %.*s", len,
                          MT_COUNTERS_NAME_MAX - 1, (int)(len > 60 ? 60 : len), s);
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && memcmp(l->v[i], s, len) == 0) return 0;
    if (l->n == MT_COUNTERS_MAX)
        return mt_ctr_err(err, errlen, "too many counter events (max %d)", MT_COUNTERS_MAX);
    memcpy(l->v[l->n], s, len);
    l->v[l->n][len] = '\0';
    l->n++;
    return 0;
}

static int parse_events(const char *spec, struct name_list *l, char *err, size_t errlen)
{
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t len = (size_t)(end - start);
        if (len == 0) continue;
        if (len == 7 && memcmp(start, "default", 7) == 0) {
            if (parse_events(MT_COUNTERS_DEFAULT_EVENTS, l, err, errlen) != 0) return -1;
            l->default_fp = 1;
        } else if (len == 4 && memcmp(start, "none", 4) == 0) {
            continue;
        } else if (list_push(l, start, len, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- probing */

/* The component a name belongs to: "comp:::event" names it; presets and bare native
 * names belong to the CPU component, index 0. */
static int component_of_name(const char *name)
{
    const char *sep = strstr(name, ":::");
    if (!sep) return 0;
    char comp[64];
    size_t len = (size_t)(sep - name);
    if (len >= sizeof comp) return -1;
    memcpy(comp, name, len);
    comp[len] = '\0';
    return PAPI_get_component_index(comp);
}

/* Marks k unavailable with PAPI's message for rc, plus why its component is off. */
static void papi_unavailable(struct mt_ctr *k, const char *call, int rc, int cidx)
{
    const PAPI_component_info_t *ci = cidx >= 0 ? PAPI_get_component_info(cidx) : NULL;
    if (ci && ci->disabled)
        mt_ctr_unavailable(k, "%s: %s; %s component disabled: %s", call, papi_msg(rc), ci->name,
                           ci->disabled_reason[0] ? ci->disabled_reason : "no reason given");
    else
        mt_ctr_unavailable(k, "%s: %s", call, papi_msg(rc));
}

/* The SDE counters some library registered before now. PAPI answers "exists" for any
 * well-formed sde::: name once asked (it creates a placeholder that reads nothing), so
 * this list is taken BEFORE any name lookup, and an SDE name not in it is unavailable. */
struct sde_known {
    int cidx;
    char (*v)[MT_COUNTERS_NAME_MAX];
    size_t n;
};

static void sde_enumerate(struct sde_known *s)
{
    s->cidx = PAPI_get_component_index("sde");
    s->v = NULL;
    s->n = 0;
    if (s->cidx < 0) return;
    const PAPI_component_info_t *ci = PAPI_get_component_info(s->cidx);
    if (!ci || ci->disabled) return;
    size_t cap = 0;
    int code = PAPI_NATIVE_MASK;
    for (int rc = PAPI_enum_cmp_event(&code, PAPI_ENUM_FIRST, s->cidx); rc == PAPI_OK;
         rc = PAPI_enum_cmp_event(&code, PAPI_ENUM_EVENTS, s->cidx)) {
        if (s->n == cap) {
            size_t ncap = cap ? 2 * cap : 32;
            void *nv = realloc(s->v, ncap * sizeof *s->v);
            if (!nv) return; /* unknown SDEs then read as not registered: a reason, not a lie */
            s->v = nv;
            cap = ncap;
        }
        if (PAPI_event_code_to_name(code, s->v[s->n]) == PAPI_OK) s->n++;
    }
}

static int sde_is_known(const struct sde_known *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0) return 1;
    return 0;
}

static struct mt_papi_set *set_for_component(struct mt_counters *c, int cidx, int sde_cidx,
                                             struct mt_ctr *k)
{
    for (size_t i = 0; i < c->npapi; i++)
        if (c->papi[i].cidx == cidx) return &c->papi[i];
    if (c->npapi == MT_CTR_PAPI_SETS) {
        mt_ctr_unavailable(k, "too many PAPI components in one event list (max %d)",
                           MT_CTR_PAPI_SETS);
        return NULL;
    }
    struct mt_papi_set *s = &c->papi[c->npapi];
    memset(s, 0, sizeof *s);
    s->es = PAPI_NULL;
    s->cidx = cidx;
    int rc = PAPI_create_eventset(&s->es);
    if (rc == PAPI_OK) rc = PAPI_assign_eventset_component(s->es, cidx);
    if (rc != PAPI_OK) {
        papi_unavailable(k, "PAPI_create_eventset", rc, cidx);
        if (s->es != PAPI_NULL) PAPI_destroy_eventset(&s->es);
        return NULL;
    }
    c->npapi++;
    if (cidx != sde_cidx) { /* SDE is process-wide already and refuses the option */
        PAPI_option_t opt;
        memset(&opt, 0, sizeof opt);
        opt.inherit.eventset = s->es;
        opt.inherit.inherit = PAPI_INHERIT_ALL;
        s->inherit_rc = PAPI_set_opt(PAPI_INHERIT, &opt);
    }
    return s;
}

/* Probes k alone in a scratch eventset, then adds it to its component's set. Returns 1
 * when k is available. */
static int probe_and_add(struct mt_counters *c, struct mt_ctr *k, const struct sde_known *sde)
{
    const char *name = k->name;
    int cidx = component_of_name(name);
    if (sde->cidx >= 0 && cidx == sde->cidx && !sde_is_known(sde, name)) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(sde->cidx);
        if (ci && ci->disabled)
            mt_ctr_unavailable(k, "sde component disabled: %s", ci->disabled_reason);
        else
            mt_ctr_unavailable(k, "SDE counter not registered in this process before the "
                                  "counters were opened (no library called papi_sde_init "
                                  "and registered it)");
        return 0;
    }
    int rc = PAPI_query_named_event(name);
    if (rc != PAPI_OK) {
        papi_unavailable(k, "PAPI_query_named_event", rc, cidx);
        return 0;
    }
    int code = 0;
    rc = PAPI_event_name_to_code(name, &code);
    if (rc != PAPI_OK) {
        papi_unavailable(k, "PAPI_event_name_to_code", rc, cidx);
        return 0;
    }
    cidx = PAPI_get_event_component(code);

    int scratch = PAPI_NULL;
    rc = PAPI_create_eventset(&scratch);
    if (rc == PAPI_OK) {
        rc = PAPI_add_event(scratch, code);
        PAPI_cleanup_eventset(scratch);
        PAPI_destroy_eventset(&scratch);
    }
    if (rc != PAPI_OK) {
        papi_unavailable(k, "PAPI_add_event", rc, cidx);
        return 0;
    }

    struct mt_papi_set *s = set_for_component(c, cidx, sde->cidx, k);
    if (!s) return 0;
    rc = PAPI_add_event(s->es, code);
    if (rc != PAPI_OK) {
        mt_ctr_unavailable(k,
                           "PAPI_add_event: %s (the event works alone but not together "
                           "with the events listed before it)",
                           papi_msg(rc));
        return 0;
    }
    s->code[s->n] = code;
    s->ctr[s->n++] = (size_t)(k - c->ctr);
    k->pub.available = 1;
    return 1;
}

/* Starts s. When the kernel refuses the whole set (fewer free counters than PAPI
 * expected, e.g. a watchdog holds one), drops events from the end, each unavailable with
 * the reason, until the rest starts; another running set on this thread (PAPI_EISRUN)
 * makes them all unavailable. Returns the final PAPI_start result. */
static int start_set(struct mt_counters *c, struct mt_papi_set *s)
{
    int rc = PAPI_OK;
    while (s->n > 0 && (rc = PAPI_start(s->es)) != PAPI_OK) {
        struct mt_ctr *last = &c->ctr[s->ctr[s->n - 1]];
        if (rc == PAPI_EISRUN || s->n == 1 ||
            PAPI_remove_event(s->es, s->code[s->n - 1]) != PAPI_OK)
            break;
        mt_ctr_unavailable(last,
                           "PAPI_start: %s (removed so the events before it could "
                           "count)",
                           papi_msg(rc));
        s->n--;
    }
    for (size_t j = 0; rc != PAPI_OK && j < s->n; j++)
        papi_unavailable(&c->ctr[s->ctr[j]], "PAPI_start", rc, s->cidx);
    s->started = rc == PAPI_OK && s->n > 0;
    if (!s->started) s->n = 0;
    return rc;
}

int mt_ctr_papi_open(struct mt_counters *c, const char *events, int *want_cycles, int *want_ins,
                     char *err, size_t errlen)
{
    *want_cycles = *want_ins = 0;
    char(*names)[MT_COUNTERS_NAME_MAX] = calloc(MT_COUNTERS_MAX, sizeof *names);
    if (!names) return mt_ctr_err(err, errlen, "out of memory");
    struct name_list l = {.v = names, .cap = MT_COUNTERS_MAX};
    if (parse_events(events, &l, err, errlen) != 0) {
        free(names);
        return -1;
    }

    pthread_once(&papi_once, papi_init_once);
    struct sde_known sde = {.cidx = -1};
    if (papi_ready) sde_enumerate(&sde);

    int rc = 0;
    int fp_missing = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct mt_ctr *k = mt_ctr_add(c, l.v[i], "count", MT_COUNTER_PAPI);
        if (!k) {
            rc = mt_ctr_err(err, errlen, "too many counters (max %d)", MT_COUNTERS_MAX);
            break;
        }
        int ok = papi_ready ? probe_and_add(c, k, &sde) : 0;
        if (!papi_ready) mt_ctr_unavailable(k, "%s", papi_init_reason);
        if (!ok && strcmp(k->name, "PAPI_TOT_CYC") == 0) *want_cycles = 1;
        if (!ok && strcmp(k->name, "PAPI_TOT_INS") == 0) *want_ins = 1;
        if (!ok && l.default_fp && strcmp(k->name, "PAPI_FP_OPS") == 0) fp_missing = 1;
    }
    /* CPUs without PAPI_FP_OPS often count single and double precision apart: take the
     * ones that work, and list neither when neither does (FP_OPS already says why). */
    static const char *const fp_split[] = {"PAPI_SP_OPS", "PAPI_DP_OPS"};
    for (size_t i = 0; rc == 0 && papi_ready && fp_missing && i < 2; i++) {
        int dup = 0;
        for (size_t j = 0; j < c->n; j++)
            dup |= strcmp(c->ctr[j].name, fp_split[i]) == 0;
        struct mt_ctr *k = dup ? NULL : mt_ctr_add(c, fp_split[i], "count", MT_COUNTER_PAPI);
        if (k && !probe_and_add(c, k, &sde)) c->n--; /* the last one added, in no eventset */
    }
    free(sde.v);
    free(names);

    for (size_t i = 0; i < c->npapi; i++) {
        struct mt_papi_set *s = &c->papi[i];
        int inherit_rc = s->inherit_rc;
        int is_sde = s->cidx == sde.cidx;
        start_set(c, s);
        for (size_t j = 0; j < s->n; j++) {
            struct mt_ctr *k = &c->ctr[s->ctr[j]];
            k->pub.scope = (is_sde || inherit_rc == PAPI_OK) ? "process" : "thread";
            if (!is_sde && inherit_rc != PAPI_OK) {
                snprintf(k->note, sizeof k->note,
                         "counts the opening thread only (PAPI_INHERIT: %s)", papi_msg(inherit_rc));
                k->pub.note = k->note;
            }
        }
    }
    return rc;
}

int mt_ctr_papi_read(struct mt_counters *c, int64_t *snap, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->npapi; i++) {
        struct mt_papi_set *s = &c->papi[i];
        if (!s->started) continue;
        int rc = PAPI_read(s->es, s->vals);
        if (rc != PAPI_OK) return mt_ctr_err(err, errlen, "PAPI_read: %s", papi_msg(rc));
        for (size_t j = 0; j < s->n; j++)
            snap[s->ctr[j]] = s->vals[j];
    }
    return 0;
}

void mt_ctr_papi_close(struct mt_counters *c)
{
    for (size_t i = 0; i < c->npapi; i++) {
        struct mt_papi_set *s = &c->papi[i];
        if (s->started) PAPI_stop(s->es, s->vals);
        PAPI_cleanup_eventset(s->es);
        PAPI_destroy_eventset(&s->es);
    }
    c->npapi = 0;
}

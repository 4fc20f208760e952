/* optim.c — 8-bit AdamW, Adafactor and the offloaded optimizer state (optim.h).
 *
 * What it is for: the unit kernels (mt_q8_*, mt_adafactor_unit), the state layout by
 * units and chunks, and the offload file with its helper thread.
 * What it is not for: plain in-RAM AdamW (kernels.c, gpt.c), the engine (tmodel.c).
 */
#include "optim.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <memtrade/memcat.h>

#define EPS1 1e-30f    /* Adafactor's epsilon_1, added to g^2 */
#define DECAY_EXP -0.8 /* Adafactor's beta2_t = 1 - t^-0.8 */
#define NONE ((size_t)-1)

static const char *const kind_names[] = {"adamw", "adamw8", "adafactor"};

int mt_optim_parse(const char *s, enum mt_optim_kind *k)
{
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, kind_names[i])) {
            *k = (enum mt_optim_kind)i;
            return 0;
        }
    return -1;
}

const char *mt_optim_name(enum mt_optim_kind k)
{
    return (unsigned)k < 3 ? kind_names[k] : "?";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- 8-bit maps */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void mt_q8_map_init(struct mt_q8_map *m, int is_signed)
{
    size_t n = 0;
    /* exponent e = 0..6: the decade 10^(e-6), its fraction linear in [0.1, 1] with
     * 2^e (signed) or 2^(e+1) (unsigned) steps, each code the middle of its step */
    for (int e = 0; e < 7; e++) {
        size_t items = (size_t)1 << (e + (is_signed ? 0 : 1));
        double scale = pow(10.0, e - 6), step = 0.9 / (double)items;
        for (size_t i = 0; i < items; i++) {
            double v = scale * (0.1 + step * ((double)i + 0.5));
            m->code[n++] = (float)v;
            if (is_signed) m->code[n++] = (float)-v;
        }
    }
    m->code[n++] = 0.0f;
    m->code[n++] = 1.0f;
    qsort(m->code, 256, sizeof(float), cmp_float);
    for (int k = 0; k < 255; k++)
        m->mid[k] = (float)(0.5 * ((double)m->code[k] + (double)m->code[k + 1]));
    m->mid[255] = INFINITY;
}

float mt_q8_absmax(const float *x, size_t n)
{
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (size_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    return amax;
}

void mt_q8_encode(uint8_t *q, const float *x, size_t n, float amax, const struct mt_q8_map *m)
{
    float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
    const float *mid = m->mid;
#pragma omp simd
    for (size_t i = 0; i < n; i++) { /* branchless lower bound over 256 midpoints */
        float xn = x[i] * inv;
        unsigned pos = 0;
        for (unsigned s = 128; s; s >>= 1)
            pos += mid[pos + s - 1] < xn ? s : 0;
        q[i] = (uint8_t)pos;
    }
}

float mt_q8_quantize(uint8_t *q, const float *x, size_t n, const struct mt_q8_map *m)
{
    float amax = mt_q8_absmax(x, n);
    mt_q8_encode(q, x, n, amax, m);
    return amax;
}

float mt_q8_quantize_ref(uint8_t *q, const float *x, size_t n, const struct mt_q8_map *m)
{
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float xn = x[i] * inv;
        unsigned c = 0;
        for (int k = 0; k < 255; k++)
            c += m->mid[k] < xn;
        q[i] = (uint8_t)c;
    }
    return amax;
}

void mt_q8_dequantize(float *x, const uint8_t *q, size_t n, float absmax, const struct mt_q8_map *m)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        x[i] = m->code[q[i]] * absmax;
}

static size_t n_blocks(size_t n)
{
    return (n + MT_Q8_BLOCK - 1) / MT_Q8_BLOCK;
}

/* One element run of 8-bit AdamW: m, v (dequantized) and p, g (k elements) updated in
 * place as mt_q8_adamw_unit's loop does. */
static void q8_adamw_run(float *pp, float *gg, float *m, float *v, size_t k,
                         const struct mt_adamw_args *a, float c1, float c2)
{
    float b1 = a->beta1, b2 = a->beta2, lr = a->lr, eps = a->eps, wd = a->weight_decay;
    float gs = a->grad_scale;
#pragma omp simd
    for (size_t i = 0; i < k; i++) {
        float gi = gg[i] * gs;
        gg[i] = 0.0f;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mh = m[i] / c1, vh = v[i] / c2;
        pp[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * pp[i]);
    }
}

void mt_q8_adamw_unit(float *p, float *g, unsigned char *state, size_t n,
                      const struct mt_adamw_args *a, const struct mt_q8_map *mm,
                      const struct mt_q8_map *mv, int ref)
{
    size_t nb = n_blocks(n);
    unsigned char *qm = state + 8 * nb, *qv = qm + n;
    float c1 = 1.0f - powf(a->beta1, (float)a->step);
    float c2 = 1.0f - powf(a->beta2, (float)a->step);
#pragma omp parallel for schedule(static) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        float m[MT_Q8_BLOCK], v[MT_Q8_BLOCK], am, av;
        size_t i0 = b * MT_Q8_BLOCK, k = n - i0 < MT_Q8_BLOCK ? n - i0 : MT_Q8_BLOCK;
        memcpy(&am, state + 4 * b, sizeof am); /* scales may sit unaligned: copied */
        memcpy(&av, state + 4 * (nb + b), sizeof av);
        mt_q8_dequantize(m, qm + i0, k, am, mm);
        mt_q8_dequantize(v, qv + i0, k, av, mv);
        q8_adamw_run(p + i0, g + i0, m, v, k, a, c1, c2);
        am = ref ? mt_q8_quantize_ref(qm + i0, m, k, mm) : mt_q8_quantize(qm + i0, m, k, mm);
        av = ref ? mt_q8_quantize_ref(qv + i0, v, k, mv) : mt_q8_quantize(qv + i0, v, k, mv);
        memcpy(state + 4 * b, &am, sizeof am);
        memcpy(state + 4 * (nb + b), &av, sizeof av);
    }
}

void mt_q8_adamw_part(float *p, float *g, unsigned char *state, size_t n,
                      const struct mt_q8_part *part, float *scratch, const struct mt_adamw_args *a,
                      const struct mt_q8_map *mm, const struct mt_q8_map *mv)
{
    size_t nb = part->n_runs, nbg = part->n_blocks;
    unsigned char *qm = state + 8 * nb, *qv = qm + n;
    float c1 = 1.0f - powf(a->beta1, (float)a->step);
    float c2 = 1.0f - powf(a->beta2, (float)a->step);
    float m[MT_Q8_BLOCK], v[MT_Q8_BLOCK], tp[MT_Q8_BLOCK], tg[MT_Q8_BLOCK], am, av;
    memset(scratch, 0, 2 * nbg * sizeof *scratch);
    for (size_t b = 0; b < nb; b++) { /* the new moments' absmax, this part's share */
        size_t i0 = part->bound[b], k = part->bound[b + 1] - i0, blk = part->block[b];
        memcpy(&am, state + 4 * b, sizeof am);
        memcpy(&av, state + 4 * (nb + b), sizeof av);
        mt_q8_dequantize(m, qm + i0, k, am, mm);
        mt_q8_dequantize(v, qv + i0, k, av, mv);
        memcpy(tp, p + i0, k * sizeof *tp); /* the update on copies: m, v as pass 2 has them */
        memcpy(tg, g + i0, k * sizeof *tg);
        q8_adamw_run(tp, tg, m, v, k, a, c1, c2);
        scratch[blk] = fmaxf(scratch[blk], mt_q8_absmax(m, k));
        scratch[nbg + blk] = fmaxf(scratch[nbg + blk], mt_q8_absmax(v, k));
    }
    part->maxf(part->user, scratch, 2 * nbg); /* the whole block's, over the ranks */
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = part->bound[b], k = part->bound[b + 1] - i0, blk = part->block[b];
        memcpy(&am, state + 4 * b, sizeof am);
        memcpy(&av, state + 4 * (nb + b), sizeof av);
        mt_q8_dequantize(m, qm + i0, k, am, mm);
        mt_q8_dequantize(v, qv + i0, k, av, mv);
        q8_adamw_run(p + i0, g + i0, m, v, k, a, c1, c2);
        am = scratch[blk];
        av = scratch[nbg + blk];
        mt_q8_encode(qm + i0, m, k, am, mm);
        mt_q8_encode(qv + i0, v, k, av, mv);
        memcpy(state + 4 * b, &am, sizeof am);
        memcpy(state + 4 * (nb + b), &av, sizeof av);
    }
}

/* ---------------------------------------------------------------- Adafactor */

/* The update's denominator for row r: sqrt(v) of element (r, c) is sqrt(R[r] * C[c] /
 * mean(R)) for a matrix, sqrt(v[r]) for a vector. */
static float ada_u(const float *st, size_t rows, size_t cols, float rmean, size_t r, size_t c,
                   float gi)
{
    return cols ? gi / sqrtf(st[r] * st[rows + c] / rmean) : gi / sqrtf(st[r]);
}

void mt_adafactor_unit(float *p, float *g, float *st, size_t rows, size_t cols, float *colacc,
                       const struct mt_adamw_args *a)
{
    mt_adafactor_part(p, g, st, rows, cols, colacc, a, NULL);
}

void mt_adafactor_part(float *p, float *g, float *st, size_t rows, size_t cols, float *colacc,
                       const struct mt_adamw_args *a, const struct mt_optim_part *part)
{
    float b2 = (float)(1.0 - pow((double)a->step, DECAY_EXP)), gs = a->grad_scale;
    size_t w = cols ? cols : 1, n = rows * w;
    int split = part ? part->split : MT_OPTIM_WHOLE;
    /* the whole unit's shape: this part's unless split */
    size_t grows = part ? part->grows : rows, gcols = part ? part->gcols : cols;
    float rmean = 1.0f;
    if (!cols) { /* a vector: the full second moment */
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * gs;
            st[i] = b2 * st[i] + (1.0f - b2) * (gi * gi + EPS1);
        }
    } else { /* row and column means of g^2 + eps1; V = R C^T / mean(R) */
        float *R = st, *Cs = st + rows, *rowacc = colacc + cols;
        double rsum = 0.0;
        memset(colacc, 0, cols * sizeof *colacc);
        for (size_t r = 0; r < rows; r++) {
            const float *gr = g + r * cols;
            float rs = 0.0f;
            for (size_t c = 0; c < cols; c++) {
                float gi = gr[c] * gs, q = gi * gi + EPS1;
                rs += q;
                colacc[c] += q;
            }
            if (split == MT_OPTIM_SPLIT_COLS) { /* a row's sum lies across the parts */
                rowacc[r] = rs;
                continue;
            }
            R[r] = b2 * R[r] + (1.0f - b2) * (rs / (float)gcols);
            rsum += R[r];
        }
        if (split == MT_OPTIM_SPLIT_COLS) {
            part->sumf(part->user, rowacc, rows);
            for (size_t r = 0; r < rows; r++) {
                R[r] = b2 * R[r] + (1.0f - b2) * (rowacc[r] / (float)gcols);
                rsum += R[r];
            }
        } else if (split == MT_OPTIM_SPLIT_ROWS) { /* a column's sum and mean(R) lie across */
            part->sumf(part->user, colacc, cols);
            part->sumd(part->user, &rsum);
        }
        for (size_t c = 0; c < cols; c++)
            Cs[c] = b2 * Cs[c] + (1.0f - b2) * (colacc[c] / (float)grows);
        rmean = (float)(rsum / (double)grows);
    }
    double sumsq = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < w; c++) {
            float u = ada_u(st, rows, cols, rmean, cols ? r : r * w + c, c, g[r * w + c] * gs);
            sumsq += (double)u * u;
        }
    if (split != MT_OPTIM_WHOLE) part->sumd(part->user, &sumsq);
    /* the update clipped to RMS d = 1, then AdamW's decoupled decay */
    size_t gn = grows * (gcols ? gcols : 1);
    float inv = 1.0f / (float)fmax(1.0, sqrt(sumsq / (double)gn)), lr = a->lr;
    float wd = a->weight_decay;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < w; c++) {
            size_t i = r * w + c;
            float u = ada_u(st, rows, cols, rmean, cols ? r : i, c, g[i] * gs);
            p[i] -= lr * (u * inv + wd * p[i]);
            g[i] = 0.0f;
        }
}

/* ---------------------------------------------------------------- layout */

size_t mt_optim_unit_bytes(enum mt_optim_kind k, size_t rows, size_t cols)
{
    size_t n = rows * (cols ? cols : 1);
    switch (k) {
    case MT_OPTIM_ADAMW:
        return 2 * n * sizeof(float);
    case MT_OPTIM_ADAMW8:
        return 2 * n + 2 * n_blocks(n) * sizeof(float);
    default:
        return (rows + cols) * sizeof(float);
    }
}

/* Units of parameter tensor p: `count` of rows x cols (cols = 0: vectors). A layer
 * tensor [L, rows, cols] or [L, n] is L units; the others are one. */
struct units {
    size_t count, rows, cols, bytes; /* bytes: of one unit */
};

static struct units units_of(const struct mt_gpt_config *cfg, enum mt_optim_kind k, int p)
{
    size_t d[3], nd = mt_gpt_param_shape(cfg, (enum mt_gpt_param)p, d);
    if (nd == 0) return (struct units){0}; /* a tensor this configuration does not have */
    int layer = p >= MT_P_LN1W && p <= MT_P_FCPROJB;
    struct units u = {.count = 1, .rows = d[0]};
    if (nd == 3)
        u = (struct units){.count = d[0], .rows = d[1], .cols = d[2]};
    else if (nd == 2 && layer)
        u = (struct units){.count = d[0], .rows = d[1]};
    else if (nd == 2)
        u.cols = d[1];
    u.bytes = mt_optim_unit_bytes(k, u.rows, u.cols);
    return u;
}

void mt_optim_unit_shape(const struct mt_gpt_config *cfg, int p, size_t *count, size_t *rows,
                         size_t *cols)
{
    struct units u = units_of(cfg, MT_OPTIM_ADAMW, p);
    *count = u.count;
    *rows = u.rows;
    *cols = u.cols;
}

static size_t unit_elems(const struct units *u)
{
    return u->rows * (u->cols ? u->cols : 1);
}

/* A chunk: units [u0, u1) of tensor p, state at byte `off`. */
struct chunk {
    int p;
    size_t u0, u1, off;
};

/* The chunks: units grouped, within a tensor, up to the largest unit's elements. Fills
 * ch (may be NULL) and returns the count; *state, *chunk_max, *cols_max get the state
 * bytes, the largest chunk's state bytes and the widest matrix. */
static size_t layout(const struct mt_gpt_config *cfg, enum mt_optim_kind k, struct chunk *ch,
                     size_t *state, size_t *chunk_max, size_t *cols_max)
{
    size_t cap = 0, nc = 0, off = 0;
    *chunk_max = *cols_max = 0;
    for (int p = 0; p < MT_P_COUNT; p++) {
        struct units u = units_of(cfg, k, p);
        if (unit_elems(&u) > cap) cap = unit_elems(&u);
        if (u.cols > *cols_max) *cols_max = u.cols;
    }
    for (int p = 0; p < MT_P_COUNT; p++) {
        struct units u = units_of(cfg, k, p);
        if (!u.count) continue;
        size_t per = cap / unit_elems(&u);
        for (size_t u0 = 0; u0 < u.count; u0 += per) {
            size_t u1 = u.count - u0 < per ? u.count : u0 + per;
            if (ch) ch[nc] = (struct chunk){.p = p, .u0 = u0, .u1 = u1, .off = off};
            nc++;
            off += (u1 - u0) * u.bytes;
            if ((u1 - u0) * u.bytes > *chunk_max) *chunk_max = (u1 - u0) * u.bytes;
        }
    }
    *state = off;
    return nc;
}

int mt_optim_plan(const struct mt_gpt_config *cfg, enum mt_optim_kind k, int offload,
                  struct mt_optim_plan *p)
{
    size_t cols;
    memset(p, 0, sizeof *p);
    p->n_chunks = layout(cfg, k, NULL, &p->state_bytes, &p->chunk_bytes, &cols);
    p->ram_bytes = offload ? 2 * p->chunk_bytes : p->state_bytes;
    p->scratch_bytes = k == MT_OPTIM_ADAFACTOR ? cols * sizeof(float) : 0;
    return 0;
}

/* ---------------------------------------------------------------- the optimizer */

struct mt_optim {
    struct mt_gpt_config cfg;
    enum mt_optim_kind kind;
    struct mt_optim_plan plan;
    struct chunk *ch;
    struct units u[MT_P_COUNT];
    struct mt_q8_map mm, mv;
    unsigned char *ram; /* the state, or the two offload buffers */
    float *colacc;
    /* offload */
    int fd, thread_on, offload;
    char path[4096];
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy, quit, io_errno;
    size_t job_w, job_r; /* chunk to write back, chunk to read (NONE: none) */
    char io_what[160];
    struct mt_optim_io io;
};

static unsigned char *buf_of(struct mt_optim *o, size_t c)
{
    return o->ram + (c % 2) * o->plan.chunk_bytes;
}

static size_t chunk_bytes(const struct mt_optim *o, size_t c)
{
    const struct chunk *h = &o->ch[c];
    return (h->u1 - h->u0) * o->u[h->p].bytes;
}

/* pread/pwrite of a whole range; returns 0 or the errno (EIO for a short read). */
static int full_io(int fd, unsigned char *b, size_t n, size_t off, int wr)
{
    while (n) {
        ssize_t k = wr ? pwrite(fd, b, n, (off_t)off) : pread(fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return errno;
        if (k == 0) return wr ? ENOSPC : EIO;
        b += k, n -= (size_t)k, off += (size_t)k;
    }
    return 0;
}

static void *io_main(void *arg)
{
    struct mt_optim *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->busy && !o->quit)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->quit) break;
        size_t w = o->job_w, r = o->job_r;
        pthread_mutex_unlock(&o->mu);
        double t0 = now_s();
        int e = 0;
        const char *what = "";
        if (w != NONE) {
            e = full_io(o->fd, buf_of(o, w), chunk_bytes(o, w), o->ch[w].off, 1);
            what = "write";
        }
        if (!e && r != NONE) {
            e = full_io(o->fd, buf_of(o, r), chunk_bytes(o, r), o->ch[r].off, 0);
            what = "read";
        }
        pthread_mutex_lock(&o->mu);
        o->io.io_s += now_s() - t0;
        if (!e) {
            o->io.written_bytes += w != NONE ? chunk_bytes(o, w) : 0;
            o->io.read_bytes += r != NONE ? chunk_bytes(o, r) : 0;
        } else if (!o->io_errno) {
            o->io_errno = e;
            snprintf(o->io_what, sizeof o->io_what, "%s of chunk %zu (%zu bytes at offset %zu)",
                     what, !strcmp(what, "write") ? w : r,
                     chunk_bytes(o, !strcmp(what, "write") ? w : r),
                     o->ch[!strcmp(what, "write") ? w : r].off);
        }
        o->busy = 0;
        pthread_cond_broadcast(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Waits for the helper's job; returns 0 or -1 with the first I/O error's cause. */
static int io_wait(struct mt_optim *o, char *err, size_t errlen)
{
    double t0 = now_s();
    pthread_mutex_lock(&o->mu);
    while (o->busy)
        pthread_cond_wait(&o->cv, &o->mu);
    int e = o->io_errno;
    pthread_mutex_unlock(&o->mu);
    o->io.wait_s += now_s() - t0;
    if (!e) return 0;
    snprintf(err, errlen, "optimizer offload file %s: %s failed: %s", o->path, o->io_what,
             strerror(e));
    return -1;
}

static void io_post(struct mt_optim *o, size_t w, size_t r)
{
    pthread_mutex_lock(&o->mu);
    o->job_w = w;
    o->job_r = r;
    o->busy = 1;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void mt_optim_free(struct mt_optim *o)
{
    if (!o) return;
    if (o->thread_on) {
        pthread_mutex_lock(&o->mu);
        while (o->busy)
            pthread_cond_wait(&o->cv, &o->mu);
        o->quit = 1;
        pthread_cond_broadcast(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->th, NULL);
        pthread_mutex_destroy(&o->mu);
        pthread_cond_destroy(&o->cv);
    }
    if (o->fd >= 0) {
        close(o->fd);
        unlink(o->path);
    }
    free(o->ram);
    free(o->colacc);
    free(o->ch);
    free(o);
}

static int create_file(struct mt_optim *o, const char *dir, char *err, size_t errlen)
{
    if (!dir || !dir[0]) dir = ".";
    snprintf(o->path, sizeof o->path, "%s/mt_optim_state_XXXXXX", dir);
    o->fd = mkstemp(o->path);
    if (o->fd < 0) {
        snprintf(err, errlen, "cannot create the optimizer offload file in %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    /* the state starts at zero: the whole file written now, so that a full disk shows
     * here rather than mid-step */
    int e = posix_fallocate(o->fd, 0, (off_t)o->plan.state_bytes);
    if (e) {
        snprintf(err, errlen, "cannot allocate %zu bytes for the optimizer offload file %s: %s",
                 o->plan.state_bytes, o->path, strerror(e));
        return -1;
    }
    o->io.file_bytes = o->plan.state_bytes;
    if (pthread_mutex_init(&o->mu, NULL) || pthread_cond_init(&o->cv, NULL) ||
        pthread_create(&o->th, NULL, io_main, o)) {
        snprintf(err, errlen, "cannot start the optimizer offload thread");
        return -1;
    }
    o->thread_on = 1;
    return 0;
}

int mt_optim_create(struct mt_optim **out, const struct mt_gpt_config *cfg, enum mt_optim_kind k,
                    int offload, const char *dir, char *err, size_t errlen)
{
    *out = NULL;
    struct mt_optim *o = calloc(1, sizeof *o);
    if (!o) return snprintf(err, errlen, "out of memory for the optimizer"), -1;
    o->fd = -1;
    o->cfg = *cfg;
    o->kind = k;
    o->offload = offload;
    mt_optim_plan(cfg, k, offload, &o->plan);
    for (int p = 0; p < MT_P_COUNT; p++)
        o->u[p] = units_of(cfg, k, p);
    mt_q8_map_init(&o->mm, 1);
    mt_q8_map_init(&o->mv, 0);
    o->ch = calloc(o->plan.n_chunks, sizeof *o->ch);
    size_t s, c, w;
    int bad = !o->ch;
    if (o->ch) layout(cfg, k, o->ch, &s, &c, &w);
    int prev = mt_memcat_set(MT_MEM_OPTIMIZER);
    o->ram = calloc(1, o->plan.ram_bytes ? o->plan.ram_bytes : 1);
    mt_memcat_set(MT_MEM_WORKSPACE);
    if (o->plan.scratch_bytes) o->colacc = malloc(o->plan.scratch_bytes);
    mt_memcat_set(prev);
    bad |= !o->ram || (o->plan.scratch_bytes && !o->colacc);
    if (bad) {
        mt_optim_free(o);
        return snprintf(err, errlen, "out of memory for the optimizer state (%zu bytes)",
                        o->plan.ram_bytes),
               -1;
    }
    if (offload && create_file(o, dir, err, errlen)) {
        mt_optim_free(o);
        return -1;
    }
    *out = o;
    return 0;
}

size_t mt_optim_n_chunks(const struct mt_optim *o)
{
    return o->plan.n_chunks;
}

void mt_optim_chunk(const struct mt_optim *o, size_t c, int *p, size_t *e0, size_t *n)
{
    const struct chunk *h = &o->ch[c];
    size_t per = unit_elems(&o->u[h->p]);
    *p = h->p;
    *e0 = h->u0 * per;
    *n = (h->u1 - h->u0) * per;
}

int mt_optim_begin(struct mt_optim *o, char *err, size_t errlen)
{
    if (!o->offload) return 0;
    if (io_wait(o, err, errlen)) return -1;
    io_post(o, NONE, 0);
    return 0;
}

int mt_optim_update(struct mt_optim *o, size_t c, float *w, float *g, const struct mt_adamw_args *a,
                    char *err, size_t errlen)
{
    const struct chunk *h = &o->ch[c];
    const struct units *u = &o->u[h->p];
    unsigned char *st = o->ram + h->off;
    if (o->offload) { /* chunk c is in its buffer; write c - 1 back and read c + 1 */
        if (io_wait(o, err, errlen)) return -1;
        io_post(o, c ? c - 1 : NONE, c + 1 < o->plan.n_chunks ? c + 1 : NONE);
        st = buf_of(o, c);
    }
    size_t per = unit_elems(u);
    for (size_t i = 0; i < h->u1 - h->u0; i++)
        mt_optim_unit_step(o->kind, w + i * per, g + i * per, st + i * u->bytes, u->rows, u->cols,
                           o->colacc, a, &o->mm, &o->mv);
    return 0;
}

void mt_optim_unit_step(enum mt_optim_kind k, float *w, float *g, unsigned char *state, size_t rows,
                        size_t cols, float *colacc, const struct mt_adamw_args *a,
                        const struct mt_q8_map *mm, const struct mt_q8_map *mv)
{
    size_t per = rows * (cols ? cols : 1);
    if (k == MT_OPTIM_ADAMW) /* 8 bytes a parameter: floats stay aligned */
        mt_k_adamw(w, g, (float *)(void *)state, (float *)(void *)state + per, per, a);
    else if (k == MT_OPTIM_ADAMW8)
        mt_q8_adamw_unit(w, g, state, per, a, mm, mv, 0);
    else
        mt_adafactor_unit(w, g, (float *)(void *)state, rows, cols, colacc, a);
}

int mt_optim_end(struct mt_optim *o, char *err, size_t errlen)
{
    if (!o->offload) return 0;
    if (io_wait(o, err, errlen)) return -1;
    io_post(o, o->plan.n_chunks - 1, NONE);
    return io_wait(o, err, errlen);
}

void mt_optim_io_stats(const struct mt_optim *o, struct mt_optim_io *s)
{
    *s = o->io;
}

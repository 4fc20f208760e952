/* test_ckpt.c — checkpoint round trip and refusal of every kind of damage.
 *
 * What it is for: a saved model loads back bit-exactly (into any mode), and a truncated
 * file, a flipped byte (header or tensor data), a wrong magic, a wrong version, trailing
 * bytes and a configuration mismatch are each refused with a message saying so, with no
 * model returned. What it is not for: the training that produced the weights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "tf_test.h"

static char err[512];
static char path[256];

/* Writes a damaged copy and checks that loading it fails mentioning `why`. */
static void expect_refused(const char *label, const unsigned char *b, size_t n,
                           const struct mt_gpt_config *expect, const char *why)
{
    char bad[300];
    snprintf(bad, sizeof bad, "%s.bad", path);
    tf_spit(bad, b, n);
    struct mt_gpt *m = (struct mt_gpt *)1;
    int rc = mt_ckpt_load(bad, expect, MT_GPT_WEIGHTS, 0, 0, &m, NULL, err, sizeof err);
    printf("%-22s -> %s\n", label, rc ? err : "ACCEPTED");
    CHECK(rc != 0 && m == NULL);
    CHECK(strstr(err, why) != NULL);
    unlink(bad);
}

int main(void)
{
    struct mt_gpt_config cfg, small;
    struct mt_gpt *m = NULL, *back = NULL;
    snprintf(path, sizeof path, "/tmp/mt_test_ckpt_%ld.bin", (long)getpid());
    CHECK_OK(mt_gpt_config_parse(&cfg, "tiny,vocab=300", err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    mt_gpt_init(m, 5);
    m->adam_step = 123;
    CHECK_OK(mt_ckpt_save(m, path, err, sizeof err), err);

    uint64_t step = 0;
    CHECK_OK(mt_ckpt_load(path, &cfg, MT_GPT_INFER, 2, 16, &back, &step, err, sizeof err), err);
    CHECK(step == 123);
    CHECK(memcmp(&back->cfg, &cfg, sizeof cfg) == 0);
    CHECK(memcmp(back->params, m->params, m->slab_bytes[MT_MEM_WEIGHTS]) == 0);
    mt_gpt_free(back);
    struct mt_gpt_config peek;
    CHECK_OK(mt_ckpt_peek(path, &peek, NULL, err, sizeof err), err);
    CHECK(memcmp(&peek, &cfg, sizeof cfg) == 0);
    printf("round trip: %zu parameters bit-identical\n", m->n_params);

    size_t n;
    unsigned char *good = tf_slurp(path, &n), *b = malloc(n + 1);
    expect_refused("truncated (1 byte)", good, n - 1, NULL, "truncated");
    expect_refused("truncated (half)", good, n / 2, NULL, "truncated");
    expect_refused("truncated (header)", good, 20, NULL, "truncated");
    expect_refused("empty", good, 0, NULL, "truncated");
    memcpy(b, good, n), b[0] ^= 0x20;
    expect_refused("wrong magic", b, n, NULL, "magic");
    memcpy(b, good, n), b[8] = 9;
    expect_refused("wrong version", b, n, NULL, "version");
    memcpy(b, good, n), b[20] ^= 1; /* inside the config */
    expect_refused("flipped header byte", b, n, NULL, "header checksum");
    memcpy(b, good, n), b[n / 2] ^= 0x04;
    expect_refused("flipped data byte", b, n, NULL, "checksum");
    memcpy(b, good, n), b[n - 3] ^= 0x80; /* inside the last checksum */
    expect_refused("flipped checksum byte", b, n, NULL, "checksum");
    memcpy(b, good, n), b[n] = 0;
    expect_refused("trailing byte", b, n + 1, NULL, "trailing");
    CHECK_OK(mt_gpt_config_preset(&small, "small", err, sizeof err), err);
    expect_refused("config mismatch", good, n, &small, "config mismatch");
    CHECK(mt_ckpt_load("/nonexistent/x.bin", NULL, MT_GPT_WEIGHTS, 0, 0, &back, NULL, err,
                       sizeof err) != 0);
    /* a failed save leaves nothing behind and says why */
    CHECK(mt_ckpt_save(m, "/nonexistent/dir/x.bin", err, sizeof err) != 0);
    free(good), free(b);
    unlink(path);
    mt_gpt_free(m);
    printf("ok\n");
    return 0;
}

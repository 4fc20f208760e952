/* model_cache.h — where the tests keep trained models: the harness's model cache.
 *
 * What it is for: test fixtures that train a model once and keep it where the harness
 * keeps its own ($XDG_CACHE_HOME/memtrade, else ~/.cache/memtrade), so a later build, a
 * sanitizer build and `memtrade` runs of the same recipe reuse it. Header only.
 * What it is not for: naming the files (each fixture keys its own by its recipe).
 */
#ifndef MT_TEST_MODEL_CACHE_H
#define MT_TEST_MODEL_CACHE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* The model cache folder into buf (capacity n), created with its parent: returns buf, or
 * NULL when neither XDG_CACHE_HOME nor HOME is set or a folder cannot be made. */
static inline const char *mt_test_cache_dir(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0])
        snprintf(buf, n, "%s", xdg);
    else if (home && home[0])
        snprintf(buf, n, "%s/.cache", home);
    else
        return NULL;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return NULL;
    size_t len = 0;
    while (buf[len])
        len++;
    snprintf(buf + len, n - len, "/memtrade");
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return NULL;
    return buf;
}

#endif

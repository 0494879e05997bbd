/*
 * The e2e sound tests' tone (tone.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/e2e/desk.h"
#include "tests/e2e/tone.h"

int tone_write(const char *path)
{
    FILE *f = fopen(path, "wb");
    int n = TONE_RATE * TONE_MS / 1000;

    if (f == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        int16_t s =
            (int16_t)(TONE_AMP * sin(2 * M_PI * TONE_HZ * i / TONE_RATE));
        int16_t lr[2] = { s, s };

        fwrite(lr, sizeof(lr), 1, f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* The whole tone goes to the sound server at once (a latency longer than
 * the tone): pacat starved of CPU on a busy machine must not put gaps into
 * the desktop's own sound, which is what the host is meant to carry. */
int tone_play(const char *pulse, const char *tone)
{
    return desk_sh(NULL,
                   "PULSE_SERVER='%s' pacat --raw --format=s16le --rate=%d "
                   "--channels=2 --latency-msec=%d '%s'",
                   pulse, TONE_RATE, TONE_MS + 500, tone);
}

/* Power of frequency hz in n mono samples (Goertzel). */
static double goertzel(const double *x, int n, double hz)
{
    double w = 2 * M_PI * hz / TONE_RATE, c = 2 * cos(w), s0, s1 = 0, s2 = 0;

    for (int i = 0; i < n; i++) {
        s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* 1 kHz over the strongest of the other probes in one block, in dB. */
static double block_ratio_db(const double *x, int n)
{
    const double other[] = { 500, 1500, 3000 };
    double p = goertzel(x, n, TONE_HZ), q = 1e-9;

    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        double o = goertzel(x, n, other[i]);

        q = o > q ? o : q;
    }
    return 10 * log10(p / q);
}

int tone_listen(const char *path, struct tone_heard *h)
{
    enum { BLOCK = TONE_RATE / 100, MAX_LOUD = 1000 };
    FILE *f = fopen(path, "rb");
    int16_t lr[2];
    double block[BLOCK], ratios[MAX_LOUD];
    int k = 0, n_loud = 0;

    memset(h, 0, sizeof(*h));
    if (f == NULL)
        return -1;
    while (fread(lr, sizeof(lr), 1, f) == 1) {
        block[k++] = (lr[0] + lr[1]) / 2.0;
        if (k == BLOCK) {
            double e = 0;

            for (int i = 0; i < k; i++)
                e += block[i] * block[i];
            e = sqrt(e / k);
            if (e > TONE_AMP / 1.414 / 10) {
                h->loud_ms += 10;
                if (n_loud < MAX_LOUD)
                    ratios[n_loud++] = block_ratio_db(block, BLOCK);
            }
            if (e > h->rms)
                h->rms = e;
            k = 0;
        }
    }
    fclose(f);
    if (n_loud > 0) {
        qsort(ratios, (size_t)n_loud, sizeof(ratios[0]), cmp_double);
        h->ratio_db = ratios[n_loud / 2];
    }
    return 0;
}

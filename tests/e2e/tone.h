/*
 * A test tone for the end-to-end sound tests (e2e_audio, e2e_winhost):
 * TONE_MS of TONE_HZ at TONE_AMP, stereo S16 at TONE_RATE, played on the
 * host's desktop through a private PulseAudio (desk_pulse_start), and
 * what a viewer played (SDL's "disk" audio driver writes it to a file)
 * measured: how much of it was loud, and how much 1 kHz stands above
 * other frequencies (Goertzel).
 */
#ifndef HD_TESTS_E2E_TONE_H
#define HD_TESTS_E2E_TONE_H

#define TONE_RATE 48000
#define TONE_HZ   1000
#define TONE_MS   1500
#define TONE_AMP  8000

struct tone_heard {
    int loud_ms;     /* 10 ms blocks above a tenth of the tone's level */
    double ratio_db; /* 1 kHz over the strongest other probe: the median of
                      * the loud blocks (one block at a splice, where the
                      * viewer cut its queue, has a broad spectrum) */
    double rms;      /* of the loudest 10 ms */
};

/* Write the tone as raw samples to path.  0 or -1. */
int tone_write(const char *path);

/* Play the file tone (tone_write's) on the PulseAudio server pulse
 * (pacat); its exit status. */
int tone_play(const char *pulse, const char *tone);

/* Measure the raw stereo S16 samples in path into *h.  0 or -1. */
int tone_listen(const char *path, struct tone_heard *h);

#endif

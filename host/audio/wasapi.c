/*
 * The wasapi audio backend (Windows): what the default output device
 * plays, through WASAPI loopback capture in shared mode; or, with
 * --audio-source, any active device whose name contains that text
 * (an output device: its loopback; a recording device such as "Stereo
 * Mix" or a microphone: captured as it is), or "default-input" for the
 * default recording device.  See audio.h.
 *
 * The device's mix format is taken as it is (32-bit float, or 16/32-bit
 * integer PCM, any rate and channel count) and converted here: the first
 * two channels (a mono device on both), linear interpolation to
 * AUDIO_RATE, signed 16-bit.  Reading polls the capture client every few
 * milliseconds; loopback delivers no packets at all while nothing plays,
 * so after QUIET_MS without data silent frames are made at the frames'
 * pace, and the framework's silence detection then stops sending (as
 * with pulse).
 *
 * Wine (tested there): loopback is not implemented (Initialize returns
 * AUDCLNT_E_WRONG_ENDPOINT_TYPE: the e2e checks that the default output's
 * loopback is what is tried without --audio-source, and that the refusal
 * is reported with the way round), recording devices (PulseAudio
 * sources) work: the e2e uses "--audio-source" with one.  THE LOOPBACK
 * ITSELF IS UNTESTED ON REAL WINDOWS.  When the default output changes
 * (headphones plugged in), the stream stays on the old device until it
 * goes away (AUDCLNT_E_DEVICE_INVALIDATED): the framework then reopens
 * the new default after AUDIO_RETRY_MS.
 *
 * Threads: the audio thread only; COM is initialised there (MTA) at open
 * and released at close.
 */
#define COBJMACROS
#define INITGUID
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <winsock2.h> /* before windows.h, as common/os.h has it */
#include <windows.h>

#include <audioclient.h>
#include <functiondiscoverykeys_devpkey.h>
#include <mmdeviceapi.h>

#include "host/audio/audio.h"
#include "log.h"

#define MOD "audio"

#define BUFFER_HNS   2000000 /* 200 ms of device buffer */
#define POLL_MS      4
#define QUIET_MS     100 /* no packet for this long: nothing plays */
#define FIFO_SECONDS 1

struct wasapi {
    int com; /* CoInitializeEx succeeded: CoUninitialize at close */
    IMMDeviceEnumerator *en;
    IMMDevice *dev;
    IAudioClient *ac;
    IAudioCaptureClient *cc;
    WAVEFORMATEX *mix;
    int rate, channels, is_float, bits;
    /* stereo float samples at the device's rate, waiting to be resampled */
    float *fifo;
    size_t fifo_n, fifo_cap; /* in frames */
    double pos;              /* read position into the fifo, frames */
    ULONGLONG last_ms;       /* when the last frame was returned */
    ULONGLONG data_ms;       /* when the device last gave samples */
};

/* ---- the device -----------------------------------------------------------
 */

static void utf8(const wchar_t *w, char *out, size_t n)
{
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)n, NULL, NULL) <= 0)
        snprintf(out, n, "?");
}

/* The device's friendly name, UTF-8 (or "?"). */
static void device_name(IMMDevice *d, char *out, size_t n)
{
    IPropertyStore *ps = NULL;
    PROPVARIANT v;

    snprintf(out, n, "?");
    if (FAILED(IMMDevice_OpenPropertyStore(d, STGM_READ, &ps)))
        return;
    PropVariantInit(&v);
    if (SUCCEEDED(IPropertyStore_GetValue(ps, &PKEY_Device_FriendlyName, &v)) &&
        v.vt == VT_LPWSTR)
        utf8(v.pwszVal, out, n);
    PropVariantClear(&v);
    IPropertyStore_Release(ps);
}

static int is_render(IMMDevice *d)
{
    IMMEndpoint *ep = NULL;
    EDataFlow flow = eRender;

    if (SUCCEEDED(
            IMMDevice_QueryInterface(d, &IID_IMMEndpoint, (void **)&ep))) {
        IMMEndpoint_GetDataFlow(ep, &flow);
        IMMEndpoint_Release(ep);
    }
    return flow == eRender;
}

/* Does name contain want, ignoring ASCII case? */
static int name_has(const char *name, const char *want)
{
    size_t n = strlen(want);

    for (; *name != '\0'; name++)
        if (_strnicmp(name, want, n) == 0)
            return 1;
    return 0;
}

/*
 * The device source names (NULL: the default output).  0 with w->dev, or
 * -ENODEV with the reason (and the devices there are) in why.
 */
static int find_device(struct wasapi *w, const char *source, char *why,
                       size_t why_n)
{
    IMMDeviceCollection *all = NULL;
    UINT n = 0;
    size_t used;
    char name[256];

    if (source == NULL || strcmp(source, "default-input") == 0) {
        EDataFlow flow = source == NULL ? eRender : eCapture;

        if (SUCCEEDED(IMMDeviceEnumerator_GetDefaultAudioEndpoint(
                w->en, flow, eConsole, &w->dev)))
            return 0;
        snprintf(why, why_n, "no default %s device",
                 source == NULL ? "output" : "recording");
        return -ENODEV;
    }
    if (FAILED(IMMDeviceEnumerator_EnumAudioEndpoints(
            w->en, eAll, DEVICE_STATE_ACTIVE, &all))) {
        snprintf(why, why_n, "cannot list the sound devices");
        return -ENODEV;
    }
    IMMDeviceCollection_GetCount(all, &n);
    used = (size_t)snprintf(why, why_n,
                            "no sound device named '%s' (there are:", source);
    for (UINT i = 0; i < n && w->dev == NULL; i++) {
        IMMDevice *d = NULL;

        if (FAILED(IMMDeviceCollection_Item(all, i, &d)))
            continue;
        device_name(d, name, sizeof(name));
        if (name_has(name, source)) {
            w->dev = d;
            break;
        }
        if (used < why_n)
            used += (size_t)snprintf(why + used, why_n - used, "%s '%s'",
                                     i ? "," : "", name);
        IMMDevice_Release(d);
    }
    IMMDeviceCollection_Release(all);
    if (w->dev != NULL)
        return 0;
    if (used < why_n)
        snprintf(why + used, why_n - used, ")");
    return -ENODEV;
}

/* Is the mix format one we convert?  Fills rate, channels, is_float. */
static int take_format(struct wasapi *w)
{
    const WAVEFORMATEX *f = w->mix;
    int is_float = f->wFormatTag == WAVE_FORMAT_IEEE_FLOAT;

    if (f->wFormatTag == WAVE_FORMAT_EXTENSIBLE &&
        f->cbSize >= sizeof(WAVEFORMATEXTENSIBLE) - sizeof(WAVEFORMATEX)) {
        const WAVEFORMATEXTENSIBLE *x = (const WAVEFORMATEXTENSIBLE *)f;

        /* KSDATAFORMAT_SUBTYPE_x is the WAVE_FORMAT_x tag in Data1 of
         * {0000000x-0000-0010-8000-00aa00389b71} */
        static const GUID base = { 0,
                                   0x0000,
                                   0x0010,
                                   { 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b,
                                     0x71 } };
        GUID g = x->SubFormat;

        g.Data1 = 0;
        if (!IsEqualGUID(&g, &base))
            return 0;
        if (x->SubFormat.Data1 == WAVE_FORMAT_IEEE_FLOAT)
            is_float = 1;
        else if (x->SubFormat.Data1 != WAVE_FORMAT_PCM)
            return 0;
    } else if (f->wFormatTag != WAVE_FORMAT_PCM && !is_float) {
        return 0;
    }
    w->rate = (int)f->nSamplesPerSec;
    w->channels = f->nChannels;
    w->bits = f->wBitsPerSample;
    w->is_float = is_float;
    return w->rate >= 8000 && w->rate <= 384000 && w->channels >= 1 &&
           ((is_float && w->bits == 32) ||
            (!is_float && (w->bits == 16 || w->bits == 32)));
}

static void wasapi_close(void *priv)
{
    struct wasapi *w = priv;

    if (w->ac != NULL)
        IAudioClient_Stop(w->ac);
    if (w->cc != NULL)
        IAudioCaptureClient_Release(w->cc);
    if (w->ac != NULL)
        IAudioClient_Release(w->ac);
    if (w->dev != NULL)
        IMMDevice_Release(w->dev);
    if (w->en != NULL)
        IMMDeviceEnumerator_Release(w->en);
    CoTaskMemFree(w->mix);
    free(w->fifo);
    if (w->com)
        CoUninitialize();
    memset(w, 0, sizeof(*w));
}

/* The name of the errors a first run is likely to meet ("" if another),
 * so that a report from a new PC says what failed. */
static const char *hr_name(HRESULT hr)
{
    switch (hr) {
    case AUDCLNT_E_WRONG_ENDPOINT_TYPE:
        return " AUDCLNT_E_WRONG_ENDPOINT_TYPE: no loopback here";
    case AUDCLNT_E_DEVICE_INVALIDATED:
        return " AUDCLNT_E_DEVICE_INVALIDATED: the device went away";
    case AUDCLNT_E_UNSUPPORTED_FORMAT:
        return " AUDCLNT_E_UNSUPPORTED_FORMAT";
    case AUDCLNT_E_DEVICE_IN_USE:
        return " AUDCLNT_E_DEVICE_IN_USE: another program has it exclusively";
    case AUDCLNT_E_SERVICE_NOT_RUNNING:
        return " AUDCLNT_E_SERVICE_NOT_RUNNING: the Windows Audio service";
    case E_ACCESSDENIED:
        return " E_ACCESSDENIED: the privacy settings may block recording";
    default:
        return "";
    }
}

static int wasapi_open(void *priv, const char *source, char *why, size_t why_n)
{
    struct wasapi *w = priv;
    char name[256];
    HRESULT hr;
    int loopback, r = -ENODEV;

    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    w->com = SUCCEEDED(hr); /* S_FALSE too: balanced by CoUninitialize */
    if (FAILED(hr = CoCreateInstance(&CLSID_MMDeviceEnumerator, NULL,
                                     CLSCTX_ALL, &IID_IMMDeviceEnumerator,
                                     (void **)&w->en))) {
        snprintf(why, why_n, "no Windows audio service (error 0x%08lx%s)",
                 (unsigned long)hr, hr_name(hr));
        goto fail;
    }
    if ((r = find_device(w, source, why, why_n)) != 0)
        goto fail;
    r = -ENODEV;
    device_name(w->dev, name, sizeof(name));
    loopback = is_render(w->dev);
    if (FAILED(hr = IMMDevice_Activate(w->dev, &IID_IAudioClient, CLSCTX_ALL,
                                       NULL, (void **)&w->ac)) ||
        FAILED(hr = IAudioClient_GetMixFormat(w->ac, &w->mix))) {
        snprintf(why, why_n, "%s: cannot open it (error 0x%08lx%s)", name,
                 (unsigned long)hr, hr_name(hr));
        goto fail;
    }
    if (!take_format(w)) {
        snprintf(why, why_n,
                 "%s: its format (tag 0x%x, %d bits) is not one we read", name,
                 w->mix->wFormatTag, w->mix->wBitsPerSample);
        goto fail;
    }
    if (FAILED(hr = IAudioClient_Initialize(
                   w->ac, AUDCLNT_SHAREMODE_SHARED,
                   loopback ? AUDCLNT_STREAMFLAGS_LOOPBACK : 0, BUFFER_HNS, 0,
                   w->mix, NULL)) ||
        FAILED(hr = IAudioClient_GetService(w->ac, &IID_IAudioCaptureClient,
                                            (void **)&w->cc)) ||
        FAILED(hr = IAudioClient_Start(w->ac))) {
        snprintf(why, why_n, "%s: cannot %s it (error 0x%08lx%s)%s", name,
                 loopback ? "capture what plays on" : "record from",
                 (unsigned long)hr, hr_name(hr),
                 loopback ? "; --audio-source can name a recording device "
                            "instead (Wine has no loopback)"
                          : "");
        goto fail;
    }
    w->fifo_cap = (size_t)w->rate * FIFO_SECONDS;
    if ((w->fifo = malloc(w->fifo_cap * 2 * sizeof(float))) == NULL) {
        r = -ENOMEM;
        snprintf(why, why_n, "out of memory");
        goto fail;
    }
    w->last_ms = w->data_ms = GetTickCount64();
    hd_info(MOD, "%s %s: %d Hz, %d channel%s, %d-bit %s",
            loopback ? "capturing what plays on" : "recording from", name,
            w->rate, w->channels, w->channels == 1 ? "" : "s", w->bits,
            w->is_float ? "float" : "integer");
    return 0;
fail:
    wasapi_close(w);
    return r;
}

/* ---- reading --------------------------------------------------------------
 */

/* One sample of channel c of frame i of a packet, as a float in -1..1. */
static float sample(const struct wasapi *w, const BYTE *data, UINT32 i, int c)
{
    size_t k = (size_t)i * (size_t)w->channels + (size_t)c;

    if (w->is_float)
        return ((const float *)data)[k];
    if (w->bits == 16)
        return (float)((const int16_t *)data)[k] / 32768.0f;
    return (float)((const int32_t *)data)[k] / 2147483648.0f;
}

/* Append a packet (or n frames of silence: data NULL) to the fifo; what
 * does not fit is dropped (the reader is a second behind). */
static void push(struct wasapi *w, const BYTE *data, UINT32 n)
{
    int right = w->channels > 1 ? 1 : 0;

    for (UINT32 i = 0; i < n && w->fifo_n < w->fifo_cap; i++) {
        float *o = w->fifo + w->fifo_n * 2;

        o[0] = data != NULL ? sample(w, data, i, 0) : 0.0f;
        o[1] = data != NULL ? sample(w, data, i, right) : 0.0f;
        w->fifo_n++;
    }
}

/* Take every packet the device has.  0, or -EIO after a log line. */
static int drain(struct wasapi *w)
{
    UINT32 size = 0, frames;
    BYTE *data;
    DWORD flags;
    HRESULT hr;

    for (;;) {
        if (FAILED(hr = IAudioCaptureClient_GetNextPacketSize(w->cc, &size)))
            goto lost;
        if (size == 0)
            return 0;
        if (FAILED(hr = IAudioCaptureClient_GetBuffer(w->cc, &data, &frames,
                                                      &flags, NULL, NULL)))
            goto lost;
        push(w, (flags & AUDCLNT_BUFFERFLAGS_SILENT) ? NULL : data, frames);
        IAudioCaptureClient_ReleaseBuffer(w->cc, frames);
        if (frames > 0)
            w->data_ms = GetTickCount64();
    }
lost:
    hd_warn(MOD, "reading sound: the device went away (error 0x%08lx%s)",
            (unsigned long)hr, hr_name(hr));
    return -EIO;
}

static int16_t s16(float v)
{
    v *= 32767.0f;
    return (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : v);
}

/* One AUDIO_FRAME of output from the fifo at the device's rate (linear
 * interpolation), the samples used dropped. */
static void resample(struct wasapi *w, int16_t *pcm)
{
    double step = (double)w->rate / AUDIO_RATE;
    size_t used;

    for (int i = 0; i < AUDIO_FRAME; i++) {
        size_t k = (size_t)w->pos;
        double t = w->pos - (double)k;
        const float *a = w->fifo + k * 2;
        const float *b = k + 1 < w->fifo_n ? a + 2 : a;

        pcm[i * 2] = s16((float)(a[0] + (b[0] - a[0]) * t));
        pcm[i * 2 + 1] = s16((float)(a[1] + (b[1] - a[1]) * t));
        w->pos += step;
    }
    used = (size_t)w->pos;
    if (used > w->fifo_n)
        used = w->fifo_n;
    memmove(w->fifo, w->fifo + used * 2,
            (w->fifo_n - used) * 2 * sizeof(float));
    w->fifo_n -= used;
    w->pos -= (double)used;
}

static int wasapi_read(void *priv, int16_t *pcm)
{
    struct wasapi *w = priv;
    /* input frames one output frame needs, with the interpolation's one */
    size_t need =
        (size_t)((double)AUDIO_FRAME * w->rate / AUDIO_RATE + w->pos) + 2;

    for (;;) {
        if (drain(w) != 0)
            return -EIO;
        if (w->fifo_n >= need)
            break;
        if (GetTickCount64() - w->data_ms >= QUIET_MS &&
            GetTickCount64() - w->last_ms >= AUDIO_FRAME_MS) {
            /* nothing plays (loopback sends nothing then): silence, at
             * the frames' pace */
            push(w, NULL, (UINT32)(need - w->fifo_n));
            break;
        }
        Sleep(POLL_MS);
    }
    resample(w, pcm);
    w->last_ms = GetTickCount64();
    return 0;
}

const struct audio_driver audio_driver_wasapi = {
    .name = "wasapi",
    .description = "Windows audio (WASAPI): loopback of the default output",
    .priv_size = sizeof(struct wasapi),
    .default_source = "the default output (loopback)",
    .open = wasapi_open,
    .read = wasapi_read,
    .close = wasapi_close,
};

/* Unit tests for common/uprobe: the UDP punch probe wire format. */
#include <string.h>

#include "err.h"
#include "tests/harness.h"
#include "uprobe.h"

static void known_vector(void)
{
    struct hd_uprobe p = { HD_UPROBE_PROBE, HD_UPROBE_VIEWER, 0x01020304,
                           "123456789" };
    static const uint8_t want[] = { 0xD7, 'P', 1,   2,   3,   4,   'V', 9,  '1',
                                    '2',  '3', '4', '5', '6', '7', '8', '9' };
    uint8_t buf[HD_UPROBE_MAX];
    struct hd_uprobe q;

    HT_EQ_INT(hd_uprobe_pack(&p, buf), sizeof(want));
    HT_CHECK(memcmp(buf, want, sizeof(want)) == 0);
    HT_CHECK(hd_uprobe_is(buf, sizeof(want)));
    HT_EQ_INT(hd_uprobe_parse(buf, sizeof(want), &q), 0);
    HT_EQ_INT(q.type, HD_UPROBE_PROBE);
    HT_EQ_INT(q.role, HD_UPROBE_VIEWER);
    HT_CHECK(q.conv == 0x01020304);
    HT_EQ_STR(q.id, "123456789");
}

static void answer_round_trip(void)
{
    struct hd_uprobe p = { HD_UPROBE_ANSWER, HD_UPROBE_HOST, 0xfffffffe, "" };
    uint8_t buf[HD_UPROBE_MAX];
    struct hd_uprobe q;
    size_t n = hd_uprobe_pack(&p, buf);

    HT_EQ_INT(n, 8);
    HT_EQ_INT(hd_uprobe_parse(buf, n, &q), 0);
    HT_EQ_INT(q.type, HD_UPROBE_ANSWER);
    HT_EQ_INT(q.role, HD_UPROBE_HOST);
    HT_CHECK(q.conv == 0xfffffffe);
    HT_EQ_STR(q.id, "");
}

static void malformed(void)
{
    struct hd_uprobe p = { HD_UPROBE_PROBE, HD_UPROBE_HOST, 7, "42" };
    uint8_t buf[HD_UPROBE_MAX + 8], bad[HD_UPROBE_MAX + 8];
    struct hd_uprobe q;
    size_t n = hd_uprobe_pack(&p, buf);

    /* every truncation and one byte too many */
    for (size_t i = 0; i < n; i++)
        HT_EQ_INT(hd_uprobe_parse(buf, i, &q), HD_EPROTO);
    memcpy(bad, buf, n);
    bad[n] = '3';
    HT_EQ_INT(hd_uprobe_parse(bad, n + 1, &q), HD_EPROTO);
    /* wrong magic, type, role; a control byte in the ID */
    const size_t at[] = { 0, 1, 6, 8 };
    const uint8_t val[] = { 0xD6, 'D', 'X', 0x01 };
    for (size_t i = 0; i < 4; i++) {
        memcpy(bad, buf, n);
        bad[at[i]] = val[i];
        HT_EQ_INT(hd_uprobe_parse(bad, n, &q), HD_EPROTO);
    }
    /* a protobuf message is never a probe */
    HT_CHECK(!hd_uprobe_is((const uint8_t *)"\x0a\x02\x08\x01", 4));
    /* a type or role that is not ours is not packed */
    p.type = 'D';
    HT_EQ_INT(hd_uprobe_pack(&p, buf), 0);
    p.type = HD_UPROBE_PROBE;
    p.role = 'X';
    HT_EQ_INT(hd_uprobe_pack(&p, buf), 0);
}

int main(void)
{
    ht_init("uprobe");
    HT_RUN(known_vector);
    HT_RUN(answer_round_trip);
    HT_RUN(malformed);
    return ht_finish();
}

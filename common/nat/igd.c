/*
 * UPnP-IGD, the half of port mapping that asks the router over HTTP
 * (libminiupnpc): SSDP discovery, the device description, then
 * AddPortMapping; DeletePortMapping removes it.  See map.h.  Any thread
 * (a worker's): every call blocks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include "err.h"
#include "nat/map.h"

#define UPNP_DESC "homedesk"

static int igd_add(const struct hd_nat_lease *l, uint16_t want, uint32_t life,
                   int *upnp_err)
{
    char ext[8], in[8], lease[16];
    int r;

    snprintf(ext, sizeof(ext), "%u", (unsigned)want);
    snprintf(in, sizeof(in), "%u", (unsigned)l->internal_port);
    snprintf(lease, sizeof(lease), "%u", (unsigned)life);
    r = UPNP_AddPortMapping(l->control_url, l->service_type, ext, in,
                            l->lan_addr, UPNP_DESC, "TCP", NULL, lease);
    *upnp_err = r;
    return r == UPNPCOMMAND_SUCCESS ? 0 : -EPERM;
}

int hd_nat_igd_map(uint16_t in, uint16_t want, uint32_t life,
                   const struct hd_nat_lease *prev, struct hd_nat_lease *out,
                   char *why, size_t cap)
{
    struct UPNPDev *devs = NULL;
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lan[64] = "", ext_ip[40] = "";
    int err = 0, st, r;

    memset(&urls, 0, sizeof(urls));
    out->internal_port = in;
    if (prev != NULL && prev->method == HD_NAT_MAP_IGD) {
        /* renew where it worked; rediscover if that fails */
        memcpy(out, prev, sizeof(*out));
        if (igd_add(out, want, life, &err) == 0)
            goto ok;
    }
    devs = upnpDiscover(HD_NAT_MAP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY,
                        0, 2, &err);
    if (devs == NULL) {
        snprintf(why, cap, "UPnP: no IGD answered");
        return -EHOSTUNREACH;
    }
    st = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof(lan));
    freeUPNPDevlist(devs);
    if (st != 1 && st != 2) {
        if (st != 0)
            FreeUPNPUrls(&urls);
        snprintf(why, cap, "UPnP: no internet gateway device");
        return -EHOSTUNREACH;
    }
    if (urls.controlURL == NULL ||
        strlen(urls.controlURL) >= sizeof(out->control_url) ||
        strlen(data.first.servicetype) >= sizeof(out->service_type)) {
        FreeUPNPUrls(&urls);
        snprintf(why, cap, "UPnP: unusable device description");
        return HD_EPROTO;
    }
    snprintf(out->control_url, sizeof(out->control_url), "%s", urls.controlURL);
    snprintf(out->service_type, sizeof(out->service_type), "%s",
             data.first.servicetype);
    snprintf(out->lan_addr, sizeof(out->lan_addr), "%s", lan);
    FreeUPNPUrls(&urls);
    if (UPNP_GetExternalIPAddress(out->control_url, out->service_type,
                                  ext_ip) == UPNPCOMMAND_SUCCESS)
        snprintf(out->external_ip, sizeof(out->external_ip), "%s", ext_ip);
    r = igd_add(out, want, life, &err);
    if (r != 0 && err == 725) { /* OnlyPermanentLeasesSupported */
        life = 0;
        r = igd_add(out, want, 0, &err);
    }
    if (r != 0) {
        snprintf(why, cap, "UPnP: AddPortMapping refused: %d %s", err,
                 strupnperror(err) ? strupnperror(err) : "");
        return r;
    }
ok:
    out->method = HD_NAT_MAP_IGD;
    out->external_port = want;
    out->lifetime_s = life;
    return 0;
}

int hd_nat_igd_unmap(const struct hd_nat_lease *l)
{
    char ext[8];

    snprintf(ext, sizeof(ext), "%u", (unsigned)l->external_port);
    return UPNP_DeletePortMapping(l->control_url, l->service_type, ext, "TCP",
                                  NULL) == UPNPCOMMAND_SUCCESS
               ? 0
               : -EPERM;
}

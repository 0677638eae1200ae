// XDP decapsulation for the end-to-end bed's tunnel backends.
//
// rampart's `tunnel` VIPs carry the client's packet unchanged inside a new
// outer IP header (IPIP: protocol 4 / 41) or inside outer IP + UDP + a GUE
// header. This kernel has no ipip, ip6tnl, sit or fou devices, so a backend
// takes the outer headers off in XDP on its veth and hands the inner packet
// to its own stack, which finds the VIP on `lo` and answers the client
// directly.
//
// Decapsulated (everything else passes untouched):
//   Ethernet + IPv4 (any IHL, not a fragment) or IPv6 (no extension headers)
//     protocol / next header 4  (IPv4 inside)
//     protocol / next header 41 (IPv6 inside)
//     UDP to port GUE_PORT + GUE variant 0 with hlen 0 and flags 0
//         (4 bytes: 0x00, inner protocol 4 or 41, 0x0000)
// The inner packet's version must match what the outer header announces.
// The outer headers are cut with bpf_xdp_adjust_head, the Ethernet header
// is written back in front of the inner packet with the same MAC addresses
// and the EtherType of the inner version, and the program returns XDP_PASS.
// Outer checksums are not verified (a test bed on veths).
//
// The GUE port is fixed at build time (6080, rampart's default gue_port):
//   clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c decap.c -o decap.o
//   clang ... -DGUE_PORT=7000 ...   for another port
// Load:  ip link set dev VETH xdp obj decap.o sec xdp
// Unload: ip link set dev VETH xdp off

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef GUE_PORT
#define GUE_PORT 6080
#endif

#define IP_MF_OFFSET 0x3fff // the More Fragments flag and the fragment offset

struct gue_hdr {
    __u8 ver_c_hlen; // version (2 bits), C (1 bit), hlen (5 bits): 0 here
    __u8 proto;      // the inner protocol: 4 or 41
    __u16 flags;     // 0 here
};

SEC("xdp")
int decap(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u32 outer;   // bytes of outer headers after the Ethernet header
    __u8 next;     // the outer protocol / next header
    __u8 inner;    // 4 or 41: what the inner packet is

    if ((void *)(eth + 1) > end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);

        if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
            return XDP_PASS;
        if (ip->frag_off & bpf_htons(IP_MF_OFFSET))
            return XDP_PASS; // a fragment: the kernel reassembles it
        outer = (__u32)ip->ihl * 4;
        next = ip->protocol;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);

        if ((void *)(ip6 + 1) > end || ip6->version != 6)
            return XDP_PASS;
        outer = sizeof(*ip6);
        next = ip6->nexthdr;
    } else {
        return XDP_PASS;
    }

    if (next == IPPROTO_IPIP || next == IPPROTO_IPV6) {
        inner = next;
    } else if (next == IPPROTO_UDP) {
        struct udphdr *udp = (void *)(eth + 1) + outer;
        struct gue_hdr *gue = (void *)(udp + 1);

        if ((void *)(gue + 1) > end)
            return XDP_PASS;
        if (udp->dest != bpf_htons(GUE_PORT))
            return XDP_PASS;
        if (gue->ver_c_hlen != 0 || gue->flags != 0)
            return XDP_PASS; // not variant 0 data, or options we do not parse
        if (gue->proto != IPPROTO_IPIP && gue->proto != IPPROTO_IPV6)
            return XDP_PASS;
        inner = gue->proto;
        outer += sizeof(*udp) + sizeof(*gue);
    } else {
        return XDP_PASS;
    }

    // The inner packet's version nibble must match.
    __u8 *in = (void *)(eth + 1) + outer;
    if ((void *)(in + 1) > end)
        return XDP_PASS;
    if ((*in >> 4) != (inner == IPPROTO_IPIP ? 4 : 6))
        return XDP_PASS;

    unsigned char dst[ETH_ALEN], src[ETH_ALEN];
    __builtin_memcpy(dst, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(src, eth->h_source, ETH_ALEN);

    if (bpf_xdp_adjust_head(ctx, (int)outer))
        return XDP_PASS;

    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    eth = data;
    if ((void *)(eth + 1) > end)
        return XDP_DROP; // cannot happen: the inner header was checked above
    __builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
    __builtin_memcpy(eth->h_source, src, ETH_ALEN);
    eth->h_proto = inner == IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
    return XDP_PASS;
}

// No GPL-only helper is used; the license string only labels the object.
char LICENSE[] SEC("license") = "Dual BSD/GPL";

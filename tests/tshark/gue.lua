-- GUE (Generic UDP Encapsulation, draft-ietf-intarea-gue), variant 0, for
-- tshark, which has no dissector of its own for it: rampart's tunnel mode
-- sends it to UDP port 6080 (the fixtures' gue_port). The 4-byte header
-- (version, control flag, header length in words, protocol, flags) is
-- shown, its options skipped, and the packet that follows handed to the
-- IPv4 (protocol 4) or IPv6 (41) dissector, so the tests check the inner
-- packet's checksums too.
--
--     tshark -X lua_script:tests/tshark/gue.lua -r capture.pcap

local gue = Proto("gue", "Generic UDP Encapsulation")
local f_version = ProtoField.uint8("gue.version", "Version", base.DEC, nil, 0xc0)
local f_control = ProtoField.uint8("gue.control", "Control", base.DEC, nil, 0x20)
local f_hlen = ProtoField.uint8("gue.hlen", "Header length (words)", base.DEC, nil, 0x1f)
local f_proto = ProtoField.uint8("gue.proto", "Protocol", base.DEC)
local f_flags = ProtoField.uint16("gue.flags", "Flags", base.HEX)
gue.fields = { f_version, f_control, f_hlen, f_proto, f_flags }

local ip = Dissector.get("ip")
local ipv6 = Dissector.get("ipv6")

function gue.dissector(tvb, pinfo, tree)
    if tvb:len() < 4 then
        return 0
    end
    local first = tvb(0, 1):uint()
    local hlen = 4 + 4 * (first % 32)
    local t = tree:add(gue, tvb(0, math.min(hlen, tvb:len())))
    t:add(f_version, tvb(0, 1))
    t:add(f_control, tvb(0, 1))
    t:add(f_hlen, tvb(0, 1))
    t:add(f_proto, tvb(1, 1))
    t:add(f_flags, tvb(2, 2))
    pinfo.cols.protocol = "GUE"
    -- Version 0, data (not control) messages carry a packet.
    if first >= 64 or (first % 64) >= 32 or tvb:len() <= hlen then
        return tvb:len()
    end
    local proto = tvb(1, 1):uint()
    local inner = tvb(hlen):tvb()
    if proto == 4 then
        ip:call(inner, pinfo, tree)
    elseif proto == 41 then
        ipv6:call(inner, pinfo, tree)
    end
    return tvb:len()
end

DissectorTable.get("udp.port"):add(6080, gue)

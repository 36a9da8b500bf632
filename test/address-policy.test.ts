import { describe, expect, it } from "vitest";
import { classifyAddress, judge, reachOf, widest, type AddressClass, type Reach, type Verdict } from "../src/oauth/address-policy.js";

/**
 * The address decisions as tables, in-process: nothing here connects anywhere. Which connections are
 * then made (and never made) is test/ssrf.test.ts, against servers on loopback and this machine's own address.
 */
describe("classifyAddress", () => {
  const cases: Array<[string, AddressClass]> = [
    // loopback, in every spelling that leads there
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::127.0.0.1", "loopback"], // IPv4-compatible
    ["::ffff:0:7f00:1", "loopback"], // IPv4-translated
    ["64:ff9b::7f00:1", "loopback"], // NAT64
    ["2002:7f00:1::", "loopback"], // 6to4
    // private networks
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["192.0.2.2", "private"], // documentation ranges are not on the internet either
    ["198.18.0.1", "private"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fec0::1", "private"],
    ["2001:db8::1", "private"],
    ["4000::1", "private"], // outside 2000::/3: not a global unicast address
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:c0a8:101", "private"],
    ["64:ff9b::a00:1", "private"],
    ["2002:c0a8:101::1", "private"],
    // always refused: link-local (cloud metadata), unspecified, multicast, reserved — in any form
    ["169.254.169.254", "refused"],
    ["169.254.0.1", "refused"],
    ["::ffff:169.254.169.254", "refused"],
    ["::ffff:a9fe:a9fe", "refused"],
    ["::169.254.169.254", "refused"],
    ["64:ff9b::169.254.169.254", "refused"],
    ["64:ff9b:1:a9fe:a9:fe00::", "refused"], // local-use NAT64 (RFC 8215), /48 layout of RFC 6052
    ["2002:a9fe:a9fe::", "refused"],
    ["2001:0:4136:e378:8000:63bf:5601:5601", "refused"], // Teredo client 169.254.169.254 (inverted)
    ["0.0.0.0", "refused"],
    ["0.1.2.3", "refused"],
    ["::", "refused"],
    ["::ffff:0.0.0.0", "refused"],
    ["fe80::1", "refused"],
    ["fe80::1%eth0", "refused"],
    ["febf::1", "refused"],
    ["ff02::1", "refused"],
    ["224.0.0.1", "refused"],
    ["255.255.255.255", "refused"],
    ["not-an-ip", "refused"],
    // public
    ["1.1.1.1", "public"],
    ["172.32.0.1", "public"],
    ["192.169.0.1", "public"],
    ["2606:4700::1111", "public"],
    ["::ffff:1.1.1.1", "public"],
    ["64:ff9b::101:101", "public"],
  ];
  it.each(cases)("%s is %s", (address, expected) => {
    expect(classifyAddress(address).class).toBe(expected);
  });

  it("names the IPv4 address an IPv6 form carries", () => {
    expect(classifyAddress("64:ff9b::a9fe:a9fe").kind).toBe("link-local, where cloud metadata services answer, as NAT64 169.254.169.254");
  });
});

describe("judge: a server-sent address against what the user gave", () => {
  const table: Array<[AddressClass, Reach, boolean, Verdict]> = [
    // public MCP URL: only public
    ["public", "public", false, "allowed"],
    ["private", "public", false, "more-internal"],
    ["loopback", "public", false, "more-internal"],
    ["refused", "public", false, "never"],
    // private-range MCP URL: private or public, never loopback
    ["public", "private", false, "allowed"],
    ["private", "private", false, "allowed"],
    ["loopback", "private", false, "more-internal"],
    ["refused", "private", false, "never"],
    // loopback MCP URL: anything but the always-refused
    ["public", "loopback", false, "allowed"],
    ["private", "loopback", false, "allowed"],
    ["loopback", "loopback", false, "allowed"],
    ["refused", "loopback", false, "never"],
    // --allow-private-network lifts the rule, not the always-refused
    ["private", "public", true, "lifted"],
    ["loopback", "public", true, "lifted"],
    ["loopback", "private", true, "lifted"],
    ["public", "public", true, "allowed"],
    ["refused", "loopback", true, "never"],
  ];
  const sample: Record<AddressClass, string> = { public: "1.1.1.1", private: "10.0.0.1", loopback: "127.0.0.1", refused: "169.254.169.254" };
  it.each(table)("%s address, user gave %s, --allow-private-network=%s → %s", (cls, reference, allow, verdict) => {
    expect(judge(classifyAddress(sample[cls]), reference, allow)).toBe(verdict);
  });
});

describe("how internal the URLs the user gave are", () => {
  const one: Array<[string[], Reach]> = [
    [["127.0.0.1", "::1"], "loopback"],
    [["10.0.0.5"], "private"],
    [["10.0.0.5", "1.1.1.1"], "public"], // the least internal address of a name
    [["fe80::1"], "private"], // a link-local address the user typed is treated as a private network
    [[], "public"], // did not resolve: allows nothing further in
  ];
  it.each(one)("%j → %s", (addresses, reach) => {
    expect(reachOf(addresses.map(classifyAddress))).toBe(reach);
  });

  it("several URLs together allow as much as the most internal of them", () => {
    expect(widest(["public", "loopback"])).toBe("loopback");
    expect(widest(["public", "private"])).toBe("private");
    expect(widest([])).toBe("public");
  });
});

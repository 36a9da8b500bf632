import { BlockList, isIP, isIPv4 } from "node:net";

/**
 * Where an IP address leads, and whether a URL a server sent may lead there. A hostile MCP server
 * (or the authorization server it names) must not make mcp-auth send requests into the user's own
 * network: every address a server-sent URL resolves to may be no more internal than the URLs the
 * user gave (public < private network < this machine). Link-local (cloud metadata services answer
 * on 169.254.169.254), unspecified, multicast and reserved addresses are never connected to for a
 * server-sent URL, whatever the user gave. IPv6 forms that carry an IPv4 address (mapped,
 * translated, NAT64, 6to4, Teredo) are judged by the IPv4 address they lead to.
 * Ranges: the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates).
 */
export type Reach = "public" | "private" | "loopback";
export type AddressClass = Reach | "refused";

export interface Classified {
  address: string;
  class: AddressClass;
  /** What the range is, for messages ("link-local", "private (10.0.0.0/8)"). */
  kind: string;
}

type Row = [cidr: string, cls: AddressClass, kind: string];

const V4_ROWS: Row[] = [
  ["0.0.0.0/8", "refused", "unspecified"],
  ["127.0.0.0/8", "loopback", "loopback"],
  ["169.254.0.0/16", "refused", "link-local, where cloud metadata services answer"],
  ["224.0.0.0/4", "refused", "multicast"],
  ["240.0.0.0/4", "refused", "reserved"],
  ["10.0.0.0/8", "private", "private (10.0.0.0/8)"],
  ["172.16.0.0/12", "private", "private (172.16.0.0/12)"],
  ["192.168.0.0/16", "private", "private (192.168.0.0/16)"],
  ["100.64.0.0/10", "private", "shared address space (carrier-grade NAT)"],
  ["192.0.0.0/24", "private", "IETF protocol assignments"],
  ["192.0.2.0/24", "private", "documentation (TEST-NET-1)"],
  ["198.51.100.0/24", "private", "documentation (TEST-NET-2)"],
  ["203.0.113.0/24", "private", "documentation (TEST-NET-3)"],
  ["198.18.0.0/15", "private", "benchmarking"],
];

const V6_ROWS: Row[] = [
  ["::/128", "refused", "unspecified"],
  ["::1/128", "loopback", "loopback"],
  ["fe80::/10", "refused", "link-local"],
  ["ff00::/8", "refused", "multicast"],
  ["fc00::/7", "private", "unique local (fc00::/7)"],
  ["fec0::/10", "private", "site-local (fec0::/10)"],
  ["2001:db8::/32", "private", "documentation"],
  ["100::/64", "private", "discard-only"],
  ["2000::/3", "public", "global unicast"],
];

let tables: { v4: Array<[BlockList, Row]>; v6: Array<[BlockList, Row]> } | undefined;
function table() {
  const build = (rows: Row[], family: "ipv4" | "ipv6") =>
    rows.map((row): [BlockList, Row] => {
      const list = new BlockList();
      const [net, bits] = row[0].split("/");
      list.addSubnet(net!, Number(bits), family);
      return [list, row];
    });
  return (tables ??= { v4: build(V4_ROWS, "ipv4"), v6: build(V6_ROWS, "ipv6") });
}

/** The 16 bytes of a valid IPv6 address (zone id dropped), or undefined. */
function ipv6Bytes(ip: string): number[] | undefined {
  let s = ip.replace(/%.*$/, "");
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number) as [number, number, number, number];
    s = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0 || head.length + fill + tail.length !== 8) return undefined;
  const groups = [...head, ...Array<string>(fill).fill("0"), ...tail].map((g) => parseInt(g, 16));
  if (groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

const startsWith = (bytes: number[], prefix: number[]) => prefix.every((b, i) => bytes[i] === b);
const v4 = (b: number[]) => b.join(".");

/** The IPv4 address an IPv6 address carries, and the form it carries it in (undefined: none). */
function embeddedIPv4(bytes: number[]): { ipv4: string; form: string } | undefined {
  const zeros = (n: number) => Array<number>(n).fill(0);
  if (startsWith(bytes, [...zeros(10), 0xff, 0xff])) return { ipv4: v4(bytes.slice(12)), form: "IPv4-mapped" };
  if (startsWith(bytes, [...zeros(8), 0xff, 0xff, 0, 0])) return { ipv4: v4(bytes.slice(12)), form: "IPv4-translated" };
  if (startsWith(bytes, zeros(12))) return { ipv4: v4(bytes.slice(12)), form: "IPv4-compatible" };
  if (startsWith(bytes, [0, 0x64, 0xff, 0x9b, ...zeros(8)])) return { ipv4: v4(bytes.slice(12)), form: "NAT64" };
  // RFC 8215 local-use NAT64 prefix 64:ff9b:1::/48; RFC 6052 §2.2 puts a /48's IPv4 in bytes 6-7 and 9-10.
  if (startsWith(bytes, [0, 0x64, 0xff, 0x9b, 0, 1])) return { ipv4: v4([bytes[6]!, bytes[7]!, bytes[9]!, bytes[10]!]), form: "NAT64 (local-use)" };
  if (startsWith(bytes, [0x20, 0x02])) return { ipv4: v4(bytes.slice(2, 6)), form: "6to4" };
  // RFC 4380 §4: Teredo's client address is the last 32 bits, inverted.
  if (startsWith(bytes, [0x20, 0x01, 0, 0])) return { ipv4: v4(bytes.slice(12).map((b) => b ^ 0xff)), form: "Teredo" };
  return undefined;
}

/**
 * What an IP address is. Anything not known to be globally reachable counts as private.
 * @example
 * classifyAddress("::ffff:169.254.169.254").class; // "refused"
 */
export function classifyAddress(address: string): Classified {
  const ip = address.replace(/^\[|\]$/g, "");
  if (isIPv4(ip)) {
    for (const [list, [, cls, kind]] of table().v4) if (list.check(ip, "ipv4")) return { address: ip, class: cls, kind };
    return { address: ip, class: "public", kind: "public" };
  }
  const bytes = isIP(ip.replace(/%.*$/, "")) === 6 ? ipv6Bytes(ip) : undefined;
  if (!bytes) return { address: ip, class: "refused", kind: "not an IP address" };
  const bare = ip.replace(/%.*$/, "");
  // :: and ::1 first: they are the IPv4-compatible form's two exceptions.
  if (bytes.every((b, i) => b === 0 || (i === 15 && b === 1))) {
    for (const [list, [, cls, kind]] of table().v6) if (list.check(bare, "ipv6")) return { address: ip, class: cls, kind };
  }
  const inner = embeddedIPv4(bytes);
  if (inner) {
    const c = classifyAddress(inner.ipv4);
    return { address: ip, class: c.class, kind: `${c.kind}, as ${inner.form} ${inner.ipv4}` };
  }
  for (const [list, [, cls, kind]] of table().v6) if (list.check(bare, "ipv6")) return { address: ip, class: cls, kind };
  return { address: ip, class: "private", kind: "not a global unicast address" };
}

const RANK: Record<Reach, number> = { public: 0, private: 1, loopback: 2 };

/**
 * How internal one URL the user gave is, from its addresses: the least internal of them (a name
 * with a public and a private address is public), a user-given link-local address counts as private.
 */
export function reachOf(addresses: readonly Classified[]): Reach {
  let reach: Reach | undefined;
  for (const a of addresses) {
    const r: Reach = a.class === "refused" ? "private" : a.class;
    if (!reach || RANK[r] < RANK[reach]) reach = r;
  }
  return reach ?? "public";
}

/** The most internal of several user-given URLs' reaches: what they allow together. */
export function widest(reaches: readonly Reach[]): Reach {
  return reaches.reduce<Reach>((w, r) => (RANK[r] > RANK[w] ? r : w), "public");
}

export type Verdict = "allowed" | "lifted" | "more-internal" | "never";

/**
 * May a server-sent URL lead to `a`, when the user gave URLs of reach `reference`?
 * `lifted`: only because of --allow-private-network (say so).
 * @example
 * judge(classifyAddress("127.0.0.1"), "private", false); // "more-internal"
 */
export function judge(a: Classified, reference: Reach, allowPrivateNetwork: boolean): Verdict {
  if (a.class === "refused") return "never";
  if (RANK[a.class] <= RANK[reference]) return "allowed";
  return allowPrivateNetwork ? "lifted" : "more-internal";
}

/** `this machine`, `a private network`, `the public internet`: for messages. */
export function describeReach(r: Reach): string {
  return r === "loopback" ? "this machine" : r === "private" ? "a private network" : "the public internet";
}

/**
 * The rule for one flow: what a server sent may lead no further in than the URLs the user gave
 * (the MCP server URL, an issuer typed on the command line). The http layer resolves names,
 * judges every address and connects only to the addresses it judged.
 */
export interface AddressPolicy {
  readonly references: readonly string[];
  readonly allowPrivateNetwork: boolean;
}

/** `localhost` and `*.localhost` (RFC 6761 §6.3): loopback by name; mcp-auth never asks a resolver about them. */
export function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** What `localhost` and `*.localhost` are, whatever a resolver says (as curl does). */
const LOOPBACK: readonly ResolvedAddress[] = [
  { address: "127.0.0.1", family: 4 },
  { address: "::1", family: 6 },
];

async function systemResolve(hostname: string): Promise<ResolvedAddress[]> {
  // getBuiltinModule, not import(): the fast path's CommonJS bundle would start the ES module loader for it.
  const { lookup } = process.getBuiltinModule("node:dns/promises");
  return (await lookup(hostname, { all: true })) as ResolvedAddress[];
}

/** Name resolution as every connection does it: `localhost` names are loopback, other names go to `resolve` (default: the system's). */
export function resolveByName(resolve: Resolver = systemResolve): Resolver {
  return (host) => (isLocalhostName(host) ? Promise.resolve([...LOOPBACK]) : resolve(host));
}

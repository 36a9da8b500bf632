import { join } from "node:path";
import { FileError } from "../errors.js";
import { fnv1a64 } from "../profile.js";
import { writeFileAtomic } from "./fsutil.js";
import { withLock } from "./lock.js";
import type { SecretStore, StoreKind } from "./secrets.js";
import { readPrivateFile } from "./trust.js";

/**
 * Clients mcp-auth registered itself (RFC 7591 DCR), one per authorization-server issuer, so a second
 * MCP server behind the same authorization server reuses the client instead of registering another.
 * Credentials are bound to the issuer that issued them (spec 2026-07-28,
 * docs/mcp-authorization.md): a different issuer never sees them. Non-secret facts live in
 * `<configDir>/registrations.json` (0600, written atomically); a client secret, when a server insists
 * on one, goes to the secret store.
 */
export interface RegistrationRecord {
  client_id: string;
  redirect_uri: string;
  token_endpoint_auth_method: "none" | "client_secret_basic" | "client_secret_post";
  registered_at: number;
  /** Where the client secret is, when the server issued one. */
  secret_store?: StoreKind;
}

interface File {
  version: 1;
  servers: Record<string, RegistrationRecord>;
}

export const registrationSecretAccount = (issuer: string) => `registration-secret:${fnv1a64(issuer)}`;

export class Registrations {
  constructor(private readonly dir: string) {}

  private get file(): string {
    return join(this.dir, "registrations.json");
  }

  private read(): File {
    const text = readPrivateFile(this.file);
    if (!text) return { version: 1, servers: Object.create(null) };
    try {
      const f = JSON.parse(text) as File;
      if (f?.version !== 1 || typeof f.servers !== "object" || !f.servers) throw new Error("unknown format");
      return { version: 1, servers: Object.assign(Object.create(null), f.servers) };
    } catch (e) {
      throw new FileError(`${this.file} is not usable (${(e as Error).message}); refusing to overwrite it`, { hint: "move it away; mcp-auth will register again" });
    }
  }

  get(issuer: string): RegistrationRecord | undefined {
    const r = this.read().servers[issuer];
    return r && typeof r.client_id === "string" ? r : undefined;
  }

  async put(issuer: string, record: RegistrationRecord): Promise<void> {
    await this.update((servers) => void (servers[issuer] = record));
  }

  /** Forgets a registration the server no longer knows (and its secret). */
  async forget(issuer: string, store?: SecretStore): Promise<void> {
    await this.update((servers) => void delete servers[issuer]);
    await store?.delete(registrationSecretAccount(issuer)).catch(() => false);
  }

  private async update(fn: (servers: Record<string, RegistrationRecord>) => void): Promise<void> {
    await withLock(join(this.dir, "locks"), "registrations", async () => {
      const f = this.read();
      fn(f.servers);
      writeFileAtomic(this.file, JSON.stringify(f, null, 2) + "\n", { mode: 0o600, root: this.dir });
    });
  }
}

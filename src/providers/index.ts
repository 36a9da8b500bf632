import type { InputSpec } from "../core/inputs.js";
import type { IssuerMetadata, Provider } from "./types.js";
import { keycloak } from "./keycloak/index.js";
import { oci } from "./oci/index.js";
import { openproject } from "./openproject/index.js";
import { octoperf } from "./octoperf.js";
import { thunder } from "./thunder.js";

/** Every IdP module; `mcp-auth bootstrap <id>` is generated from this list. */
export const providers: readonly Provider<readonly InputSpec[]>[] = [thunder, keycloak, oci, openproject, octoperf] as unknown as Provider<readonly InputSpec[]>[];

/** The provider an issuer (or its metadata document) belongs to, if any; for doctor and discovery. */
export function providerFor(issuerOrMetadata: string | IssuerMetadata): Provider<readonly InputSpec[]> | undefined {
  return providers.find((p) => p.matches(issuerOrMetadata));
}

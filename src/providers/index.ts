import type { Provider } from "./types.js";
import { keycloak } from "./keycloak.js";
import { thunder } from "./thunder.js";

/** Every IdP module; `mcp-auth bootstrap <id>` is generated from this list. */
// Each provider declares its own option type; commander hands the parsed options back untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const providers: Provider<any>[] = [thunder, keycloak];

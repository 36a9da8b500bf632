/** test/helpers/chromium-args.mjs */
export declare const CHROMIUM_ARGS: string[];
export declare const CHROMIUM_EXECUTABLE: string;

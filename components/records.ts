/** zod records that keep every key the stack file holds. */
import { z } from "zod";

/**
 * A record that refuses a `__proto__` key. zod's records skip such a key without a word
 * (assigning it would replace the result's prototype), before the key schema sees it, so
 * `groups: {__proto__: ...}` would vanish from the config. JSON.parse and the YAML parser
 * both keep it as an ordinary own key, so it is there to find.
 */
export function refuseProtoKey<T extends z.ZodType>(record: T, message: string) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      if (value !== null && typeof value === "object" && Object.hasOwn(value, "__proto__")) {
        ctx.addIssue({ code: "custom", path: ["__proto__"], message });
      }
    })
    .pipe(record);
}

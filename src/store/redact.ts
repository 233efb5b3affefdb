// The one redaction every error path uses: store URIs as printable text, and credentials scrubbed from any text
// (SDK messages, causes, stacks). Printing is allowed only after one of these two.

/** Query parameters whose values are locations, not secrets: shown (without any user:pass of their own). */
const SHOWN_PARAMETERS = new Set(["endpoint", "region"]);

/**
 * A store URI safe to print: no `user:pass@`, and no query value except the non-secret ones (endpoint, region),
 * which lose their own userinfo and query. Works on text that is not a valid URL too (it is only ever shown).
 */
export function redactUri(uri: string): string {
  const hashless = uri.replace(/#.*$/s, "");
  const query = hashless.indexOf("?");
  const head = (query < 0 ? hashless : hashless.slice(0, query)).replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/]*@/, "$1");
  if (query < 0) return head;
  const params = hashless
    .slice(query + 1)
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf("=");
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if (!SHOWN_PARAMETERS.has(safeDecode(name).toLowerCase()) || eq < 0) return `${name}=***`;
      return `${name}=${redactLocation(safeDecode(pair.slice(eq + 1)))}`;
    });
  return `${head}?${params.join("&")}`;
}

/**
 * A URI as an import records it (in the meta and the output): no `user:pass@` and no query string at all, not even
 * the endpoint or region redactUri shows. The record says where the content was, not how it was reached.
 */
export function uriWithoutQuery(uri: string): string {
  return redactUri(uri).replace(/\?.*$/s, "");
}

/** The values redactUri hides (password, query values but the locations), for a log to mask (core.setSecret). */
export function uriSecrets(uri: string): string[] {
  const secrets: string[] = [];
  const userinfo = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/@]*)@/.exec(uri)?.[1];
  if (userinfo?.includes(":")) secrets.push(safeDecode(userinfo.slice(userinfo.indexOf(":") + 1)));
  const query = uri.replace(/#.*$/s, "").split("?")[1] ?? "";
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && !SHOWN_PARAMETERS.has(safeDecode(pair.slice(0, eq)).toLowerCase())) secrets.push(safeDecode(pair.slice(eq + 1)));
  }
  return secrets.filter((s) => s.length >= 4);
}

function redactLocation(value: string): string {
  return value.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#]*@/, "$1").replace(/[?#].*$/s, "");
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Patterns of credentials whatever the backend: SAS signatures, signed-URL parameters, keys, auth headers, userinfo. */
const CREDENTIAL_PATTERNS: [RegExp, string][] = [
  [
    /([?&](?:sig|signature|x-amz-signature|x-amz-security-token|x-amz-credential|x-goog-signature|x-goog-credential|token|access_token|code|key)=)(?!\*\*\*)[^&\s'"<>]+/gi,
    "$1***",
  ],
  [/((?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;\s'"]+/gi, "$1***"],
  [
    /\b((?:authorization|x-amz-security-token|x-ms-copy-source-authorization)["']?\s*[:=]\s*["']?)(?:Bearer |Basic |SharedKey |AWS4-HMAC-SHA256 )?[^\s'",}]+/gi,
    "$1***",
  ],
  [/\b(Bearer|Basic|SharedKey) [A-Za-z0-9+/=._:,-]{8,}/g, "$1 ***"],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b/g, "***"],
  [/([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/\s@'"]+@/g, "$1"],
];

/** `text` without any of `secrets` (and their URL-encoded forms) nor anything that looks like a credential. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("***");
  }
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

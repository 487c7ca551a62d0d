// Passkeys in the browser: the server's options (JSON, binary fields in base64url) turned into
// what navigator.credentials takes, and the credential it gives back turned into JSON.

/** Whether this browser can use passkeys at all. */
export function passkeysSupported() {
  return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
}

function bytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function encoded(buffer) {
  if (!buffer) return null;
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const withBytes = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));

/** A passkey made on this device for the registration `publicKey` options. */
export async function createPasskey(publicKey) {
  const options = {
    ...publicKey,
    challenge: bytes(publicKey.challenge),
    user: { ...publicKey.user, id: bytes(publicKey.user.id) },
    excludeCredentials: withBytes(publicKey.excludeCredentials),
  };
  const made = await navigator.credentials.create({ publicKey: options });
  return {
    id: made.id,
    rawId: encoded(made.rawId),
    type: made.type,
    response: {
      attestationObject: encoded(made.response.attestationObject),
      clientDataJSON: encoded(made.response.clientDataJSON),
      transports: made.response.getTransports ? made.response.getTransports() : undefined,
    },
    extensions: made.getClientExtensionResults(),
  };
}

/** The device's answer to the sign-in `publicKey` options. */
export async function usePasskey(publicKey) {
  const options = {
    ...publicKey,
    challenge: bytes(publicKey.challenge),
    allowCredentials: withBytes(publicKey.allowCredentials),
  };
  const used = await navigator.credentials.get({ publicKey: options });
  return {
    id: used.id,
    rawId: encoded(used.rawId),
    type: used.type,
    response: {
      authenticatorData: encoded(used.response.authenticatorData),
      clientDataJSON: encoded(used.response.clientDataJSON),
      signature: encoded(used.response.signature),
      userHandle: encoded(used.response.userHandle),
    },
    extensions: used.getClientExtensionResults(),
  };
}

/** What to tell someone whose browser or device refused or gave up. */
export function passkeyProblem(error) {
  if (error && error.name === "NotAllowedError") {
    return "The passkey was not used: the request was cancelled or timed out.";
  }
  if (error && error.name === "InvalidStateError") {
    return "This device already holds a passkey for this account.";
  }
  if (error && error.name === "SecurityError") {
    return "Passkeys work only at the address the server is configured with (server.public_url).";
  }
  return null;
}

//! A software authenticator for the passkey tests: what a security key or a platform
//! authenticator does for `navigator.credentials.create` and `.get`, and what the browser adds
//! (the client data), producing the JSON a browser would send. ES256 keys, `none`
//! attestation, user presence and verification, a signature counter the test can set.
//! (Chromium's own virtual authenticator drives the console's test.)

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct Credential {
    pub id: Vec<u8>,
    key: PKey<Private>,
    user_handle: Vec<u8>,
    pub resident: bool,
    pub counter: u32,
}

pub struct Authenticator {
    /// The origin the browser runs the page from.
    origin: String,
    pub credentials: Vec<Credential>,
}

fn b64(text: &Value) -> Vec<u8> {
    B64.decode(text.as_str().expect("a base64url string"))
        .expect("base64url")
}

impl Authenticator {
    pub fn new(origin: &str) -> Self {
        Authenticator {
            origin: origin.to_string(),
            credentials: Vec::new(),
        }
    }

    fn client_data(&self, kind: &str, challenge: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `navigator.credentials.create({publicKey})`: a new key pair, stored as a discoverable
    /// credential when the options require one.
    pub fn create(&mut self, public_key: &Value) -> Value {
        let rp_id = public_key["rp"]["id"].as_str().unwrap();
        let resident = public_key["authenticatorSelection"]["residentKey"] == "required";
        let client_data = self.client_data("webauthn.create", &public_key["challenge"]);
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        let mut ctx = BigNumContext::new().unwrap();
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .unwrap();
        let cose = BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(x.to_vec_padded(32).unwrap())),
            (Cbor::Integer(-3), Cbor::Bytes(y.to_vec_padded(32).unwrap())),
        ]);
        let id: [u8; 32] = rand::random();
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(UP | UV | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0; 16]);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend(serde_cbor_2::to_vec(&Cbor::Map(cose)).unwrap());
        let attestation = BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        self.credentials.push(Credential {
            id: id.to_vec(),
            key: PKey::from_ec_key(ec).unwrap(),
            user_handle: b64(&public_key["user"]["id"]),
            resident,
            counter: 0,
        });
        json!({
            "id": B64.encode(id),
            "rawId": B64.encode(id),
            "type": "public-key",
            "response": {
                "attestationObject":
                    B64.encode(serde_cbor_2::to_vec(&Cbor::Map(attestation)).unwrap()),
                "clientDataJSON": B64.encode(&client_data),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get({publicKey})` with credential `index`, which must be among
    /// those the options allow (any discoverable one when they list none). The counter goes
    /// up by one, as a security key's does.
    pub fn get(&mut self, public_key: &Value, index: usize) -> Value {
        self.credentials[index].counter += 1;
        self.sign(public_key, index)
    }

    /// `get` with the signature counter as it stands (a copy of the key would send this).
    pub fn sign(&self, public_key: &Value, index: usize) -> Value {
        let credential = &self.credentials[index];
        let allowed: Vec<Vec<u8>> = public_key["allowCredentials"]
            .as_array()
            .map(|list| list.iter().map(|c| b64(&c["id"])).collect())
            .unwrap_or_default();
        assert!(
            allowed.contains(&credential.id) || (allowed.is_empty() && credential.resident),
            "the options do not allow this credential"
        );
        let rp_id = public_key["rpId"].as_str().unwrap();
        let client_data = self.client_data("webauthn.get", &public_key["challenge"]);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(UP | UV);
        auth_data.extend_from_slice(&credential.counter.to_be_bytes());
        let mut signer = Signer::new(MessageDigest::sha256(), &credential.key).unwrap();
        signer.update(&auth_data).unwrap();
        signer.update(&Sha256::digest(&client_data)).unwrap();
        let signature = signer.sign_to_vec().unwrap();
        json!({
            "id": B64.encode(&credential.id),
            "rawId": B64.encode(&credential.id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(signature),
                "userHandle": credential.resident.then(|| B64.encode(&credential.user_handle)),
            },
            "extensions": {},
        })
    }
}

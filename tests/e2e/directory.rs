//! Sign-in through the site's directory (contract 10.2), against OpenLDAP's slapd from
//! Debian's packages: run by each test in the foreground, in a temporary directory with its
//! own configuration (the memberof overlay, three levels of nested groups, TLS from a CA made
//! for the test) on free loopback ports; never the machine's own service.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api_keys::{create_key, verify};
use crate::support::{server, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "admin-pw";
const SERVICE_DN: &str = "uid=svc-claribi,ou=services,dc=example,dc=org";
pub const ADMINS: &str = "cn=claribi-admins,ou=groups,dc=example,dc=org";
pub const STAFF: &str = "cn=staff,ou=groups,dc=example,dc=org";

const STRUCTURE: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example Org

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=org
objectClass: organizationalUnit
ou: services

dn: uid=svc-claribi,ou=services,dc=example,dc=org
objectClass: account
objectClass: simpleSecurityObject
uid: svc-claribi
userPassword: svc-pw
";

/// alice -> claribi-admins -> staff -> everyone; bob -> staff; carol in no group. Added
/// online, so that the memberof overlay writes `memberOf`.
const PEOPLE: &str = "\
dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.org
userPassword: alice-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@example.org
userPassword: bob-pw

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol Nogroup
sn: Nogroup
mail: carol@example.org
userPassword: carol-pw

dn: cn=claribi-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: claribi-admins
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=staff,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: staff
member: uid=bob,ou=people,dc=example,dc=org
member: cn=claribi-admins,ou=groups,dc=example,dc=org

dn: cn=everyone,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: everyone
member: cn=staff,ou=groups,dc=example,dc=org
";

fn sbin(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: scripts/test installs Debian's slapd and ldap-utils")
        })
}

/// A running slapd; killed when dropped.
pub struct Slapd {
    dir: tempfile::TempDir,
    ldap_port: u16,
    ldaps_port: u16,
    child: Option<Child>,
}

impl Slapd {
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        crate::siem::make_certificates(d);
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
disallow bind_anon
require authc

database mdb
maxsize 104857600
dbnosync
limits dn.exact=\"{SERVICE_DN}\" size.soft=500 size.hard=500 size.pr=500 size.prtotal=unlimited
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PW}
directory {d}/db
index objectClass eq
index uid,mail,cn eq
index member,memberOf eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member

access to attrs=userPassword
  by anonymous auth
  by self =w
  by * none
access to *
  by dn.exact=\"{SERVICE_DN}\" read
  by self read
  by * none
",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("structure.ldif"), STRUCTURE).unwrap();
        let out = Command::new(sbin("slapadd"))
            .args(["-q", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("structure.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut slapd = Slapd {
            dir,
            ldap_port: crate::support::free_port(),
            ldaps_port: crate::support::free_port(),
            child: None,
        };
        slapd.run();
        slapd.modify("add", PEOPLE);
        slapd
    }

    fn run(&mut self) {
        let d = self.dir.path();
        let child = Command::new(sbin("slapd"))
            .args(["-d", "0", "-h"])
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.ldap_port, self.ldaps_port
            ))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.ldaps_port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and waits for it to end: the directory is down.
    pub fn stop(&mut self) {
        crate::support::terminate(&mut self.child);
    }

    pub fn start_again(&mut self) {
        self.run();
    }

    /// Runs `ldapadd` (`add`), `ldapmodify` (`modify`) or `ldapdelete` (`delete`, `ldif` being
    /// DNs) as the directory's administrator.
    pub fn modify(&self, how: &str, ldif: &str) {
        let (tool, extra): (&str, &[&str]) = match how {
            "add" => ("ldapadd", &[]),
            "modify" => ("ldapmodify", &[]),
            "delete" => ("ldapdelete", &[]),
            _ => panic!("{how}"),
        };
        let file = self.dir.path().join("change.ldif");
        std::fs::write(&file, ldif).unwrap();
        let out = Command::new(sbin(tool))
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}/", self.ldap_port)])
            .args(["-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&file)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The provider's settings for this directory, as the API takes them.
    pub fn provider(&self) -> Value {
        json!({
            "name": "Example directory",
            "kind": "ldap",
            "email_domains": ["example.org"],
            "url": format!("ldaps://127.0.0.1:{}", self.ldaps_port),
            "bind_dn": SERVICE_DN,
            "bind_password": "svc-pw",
            "user_base": format!("ou=people,{SUFFIX}"),
            "nested_groups": true,
            "jit_provisioning": true,
            "role_mapping": [
                {"group": ADMINS, "role": "administrator"},
                {"group": STAFF, "role": "analyst"},
            ],
        })
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn with_directory(slapd: &Slapd) -> crate::support::Options {
    server().env("CLARIBI_SSO__CA_FILE", slapd.ca_file().to_str().unwrap())
}

pub fn add_provider(s: &Server, owner: &str, body: &Value) -> Value {
    let r = s
        .post("/api/v1/organization/sso-providers/")
        .bearer(owner)
        .json(body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn sync(s: &Server, owner: &str, id: i64, dry_run: bool) -> crate::support::Resp {
    s.post(&format!(
        "/api/v1/organization/sso-providers/{id}/sync/?dry_run={dry_run}"
    ))
    .bearer(owner)
    .send()
}

fn me(s: &Server, token: &str) -> Value {
    let r = s.get("/api/auth/me/").bearer(token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

pub fn audit(s: &Server, owner: &str, action: &str) -> Vec<Value> {
    let r = s
        .get(&format!("/api/v1/audit-logs/?action={action}"))
        .bearer(owner)
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["results"].as_array().unwrap().clone()
}

#[test]
fn directory_users_sign_in_with_their_groups_role_and_claribis_own_totp() {
    let slapd = Slapd::start();
    let s = with_directory(&slapd).start();
    let owner = s.owner_token();
    let provider = add_provider(&s, &owner, &slapd.provider());
    let id = provider["id"].as_i64().unwrap();
    // The bind password is write-only.
    assert!(provider.get("bind_password").is_none(), "{provider}");
    assert_eq!(provider["bind_password_set"], true);
    let listed = s
        .get("/api/v1/organization/sso-providers/")
        .bearer(&owner)
        .send();
    assert_eq!(listed.json()["count"], 1);
    assert!(!listed.body.contains("svc-pw"));

    // alice is in claribi-admins (and, nested, staff and everyone): the highest role wins; her
    // account is made at her first sign-in.
    let alice = s.login("alice@example.org", "alice-pw");
    assert_eq!(alice.status, 200, "{}", alice.body);
    let alice_token = alice.json()["access"].as_str().unwrap().to_string();
    assert_eq!(me(&s, &alice_token)["role"], "administrator");
    let created = audit(&s, &owner, "user.created");
    let made = created
        .iter()
        .find(|e| e["details"]["email"] == "alice@example.org")
        .expect("alice's account is audited");
    assert_eq!(made["details"]["via"], id, "{made}");
    let logins = audit(&s, &owner, "login.succeeded");
    assert_eq!(logins[0]["details"]["method"], "ldap", "{}", logins[0]);
    // bob is in staff: analyst.
    let bob = s.login("bob@example.org", "bob-pw").json();
    assert_eq!(bob["user"]["role"], "analyst", "{bob}");
    // carol is in no group that maps, and there is no default role.
    let carol = s.login("carol@example.org", "carol-pw");
    assert_eq!(
        (carol.status, carol.error_code().as_str()),
        (403, "sso_not_allowed")
    );
    // A wrong password, an unknown address, an empty password: as any failed login.
    for (email, password) in [
        ("alice@example.org", "wrong-password"),
        ("nobody@example.org", "whatever-1"),
        ("alice@example.org", ""),
    ] {
        let r = s.login(email, password);
        assert!(
            r.status == 401 || (r.status == 400 && password.is_empty()),
            "{email}: {} {}",
            r.status,
            r.body
        );
    }
    let failed = audit(&s, &owner, "login.failed");
    assert!(
        failed.iter().any(|e| e["details"]["method"] == "ldap"
            && e["details"]["reason"] == "wrong_password"),
        "{failed:?}"
    );
    // claribi's own TOTP still applies to a directory sign-in.
    let (secret, _) = crate::sessions::enable_mfa(&s, &alice_token);
    let asked = s.login("alice@example.org", "alice-pw");
    assert_eq!(
        (asked.status, asked.error_code().as_str()),
        (401, "mfa_required")
    );
    let code = crate::sessions::totp_at(&secret, 1);
    let with_code = s.post("/api/auth/login/").json(&json!({
        "email": "alice@example.org", "password": "alice-pw", "totp_code": code
    }));
    assert_eq!(with_code.status, 200, "{}", with_code.body);
    // The owner is never the directory's: the break-glass account's own password works.
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 200);

    // Only administrators in an interactive session manage providers.
    let key = create_key(&s, &owner, json!({"name": "ci"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let by_key = s
        .get("/api/v1/organization/sso-providers/")
        .bearer(&key)
        .send();
    assert_eq!(
        (by_key.status, by_key.error_code().as_str()),
        (403, "interactive_session_required")
    );
    let bob_token = bob["access"].as_str().unwrap();
    let by_analyst = s
        .get("/api/v1/organization/sso-providers/")
        .bearer(bob_token)
        .send();
    assert_eq!(
        (by_analyst.status, by_analyst.error_code().as_str()),
        (403, "permission_denied")
    );
    // A domain is served by one enabled provider at most.
    let twice = s
        .post("/api/v1/organization/sso-providers/")
        .bearer(&owner)
        .json(&slapd.provider());
    assert_eq!(
        (twice.status, twice.error_code().as_str()),
        (409, "conflict")
    );
    let mut disabled = slapd.provider();
    disabled["enabled"] = json!(false);
    add_provider(&s, &owner, &disabled);
    // Fields are checked, each named.
    let bad = s
        .post("/api/v1/organization/sso-providers/")
        .bearer(&owner)
        .json(&json!({
            "name": "x", "kind": "ldap", "email_domains": ["not a domain"],
            "url": "ldap://dc.example.org", "bind_dn": "cn=svc", "user_base": "dc=x",
            "role_mapping": [{"group": "cn=g", "role": "owner"}]
        }));
    assert_eq!(bad.status, 400, "{}", bad.body);
    for field in ["email_domains", "url", "bind_password", "role_mapping"] {
        assert!(
            bad.json()["errors"][field].is_array(),
            "{field}: {}",
            bad.body
        );
    }
    // A changed address or account needs the bind password again: it never goes to a host
    // it was not given for.
    let moved = s
        .request(
            "PATCH",
            &format!("/api/v1/organization/sso-providers/{id}/"),
        )
        .bearer(&owner)
        .json(&json!({"url": "ldaps://elsewhere.example.org"}));
    assert_eq!(moved.status, 400, "{}", moved.body);
    assert!(
        moved.json()["errors"]["bind_password"].is_array(),
        "{}",
        moved.body
    );
    // A domain whose addresses are another organization's users is not this one's to claim.
    let out = s.cli(
        &[
            "org",
            "create",
            "--name",
            "Other",
            "--owner-email",
            "boss@example.net",
        ],
        "other-owner-password-1\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut theirs = slapd.provider();
    theirs["email_domains"] = json!(["example.net"]);
    let claimed = s
        .post("/api/v1/organization/sso-providers/")
        .bearer(&owner)
        .json(&theirs);
    assert_eq!(
        (claimed.status, claimed.error_code().as_str()),
        (409, "conflict"),
        "{}",
        claimed.body
    );
    // After her first sign-in alice is her directory entry: another entry that takes her
    // address does not take her account.
    slapd.modify(
        "modify",
        &format!(
            "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: alice.old@example.org\n\n\
             dn: uid=carol,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: alice@example.org\n"
        ),
    );
    let taken = s.login("alice@example.org", "carol-pw");
    assert_eq!(
        (taken.status, taken.error_code().as_str()),
        (403, "sso_not_allowed"),
        "{}",
        taken.body
    );
    // At rest the bind password is sealed.
    let stored = s
        .sql()
        .one(
            "SELECT secret FROM sso_providers WHERE id = ?1",
            &[crate::support::P::I(id)],
        )
        .text();
    assert!(
        stored.starts_with("v1.") && !stored.contains("svc-pw"),
        "{stored}"
    );
}

/// 10.2: a served address's password is checked in the directory, never against a local hash.
/// That holds inside a session too: turning MFA off asks for the directory password (not a
/// local one the account had before the directory served it), and the password is changed in
/// the directory, not here.
#[test]
fn inside_a_session_a_directory_users_password_is_the_directorys() {
    use crate::sessions::{enable_mfa, totp_at};
    let slapd = Slapd::start();
    let s = with_directory(&slapd).start();
    let owner = s.owner_token();
    // bob had a local account and password before the directory came.
    s.create_user("bob@example.org", "analyst", "bob-local-pw-1");
    add_provider(&s, &owner, &slapd.provider());
    assert_eq!(s.login("bob@example.org", "bob-local-pw-1").status, 401);
    let bob = s.token("bob@example.org", "bob-pw");

    let change = s
        .post("/api/auth/password/")
        .bearer(&bob)
        .json(&json!({"current_password": "bob-pw", "new_password": "a-new-local-pw-2"}));
    assert_eq!(
        (change.status, change.error_code().as_str()),
        (409, "conflict"),
        "{}",
        change.body
    );
    assert!(change.json()["message"]
        .as_str()
        .unwrap()
        .contains("Example directory"));

    let (secret, _) = enable_mfa(&s, &bob);
    let disable = |password: &str| {
        s.post("/api/auth/mfa/totp/disable/")
            .bearer(&bob)
            .json(&json!({"password": password, "code": totp_at(&secret, 1)}))
    };
    // Refused as a wrong password at login is: `400` naming it, audited with the reason.
    let refused = |password: &str, reason: &str| {
        let r = disable(password);
        assert_eq!(r.status, 400, "{password}: {}", r.body);
        assert!(r.json()["errors"]["password"].is_array(), "{}", r.body);
        let failed = audit(&s, &owner, "login.failed");
        assert!(
            failed
                .iter()
                .any(|e| e["details"]["email"] == "bob@example.org"
                    && e["details"]["check"] == "password"
                    && e["details"]["method"] == "ldap"
                    && e["details"]["reason"] == reason),
            "{reason}: {failed:?}"
        );
    };
    let set_mail = |uid: &str, mail: &str| {
        slapd.modify(
            "modify",
            &format!(
                "dn: uid={uid},ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: {mail}\n"
            ),
        );
    };
    // The local hash is not asked.
    refused("bob-local-pw-1", "wrong_password");
    // The address moves to another entry: that entry's password does not open bob's account
    // (as at login, bob is the entry he signed in as).
    set_mail("bob", "bob.old@example.org");
    set_mail("carol", "bob@example.org");
    refused("carol-pw", "linked_to_another_entry");
    set_mail("carol", "carol@example.org");
    set_mail("bob", "bob@example.org");
    let off = disable("bob-pw");
    assert_eq!(off.status, 204, "{}", off.body);
    assert_eq!(me(&s, &bob)["mfa_enabled"], false);

    // The owner is never the directory's: their password changes here.
    let owner_change = s
        .post("/api/auth/password/")
        .bearer(&owner)
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": "owner-new-pw-3"}));
    assert_eq!(owner_change.status, 204, "{}", owner_change.body);
}

#[test]
fn a_sync_removes_leavers_at_once_applies_roles_and_changes_nothing_it_cannot_trust() {
    let mut slapd = Slapd::start();
    let s = with_directory(&slapd).start();
    let owner = s.owner_token();
    let id = add_provider(&s, &owner, &slapd.provider())["id"]
        .as_i64()
        .unwrap();
    let alice = s.login("alice@example.org", "alice-pw").json();
    let bob = s.login("bob@example.org", "bob-pw").json();
    let bob_token = bob["access"].as_str().unwrap().to_string();
    let bob_key = create_key(&s, &bob_token, json!({"name": "bob's etl"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(verify(&s, &bob_key).status, 200);

    // bob leaves the company; alice moves from the administrators to staff.
    slapd.modify("delete", "uid=bob,ou=people,dc=example,dc=org\n");
    slapd.modify(
        "modify",
        &format!(
            "dn: {ADMINS}\nchangetype: modify\nadd: member\nmember: cn=placeholder,{SUFFIX}\n-\n\
             delete: member\nmember: uid=alice,ou=people,{SUFFIX}\n\n\
             dn: {STAFF}\nchangetype: modify\nadd: member\nmember: uid=alice,ou=people,{SUFFIX}\n"
        ),
    );
    let dry = sync(&s, &owner, id, true);
    assert_eq!(dry.status, 200, "{}", dry.body);
    let report = dry.json();
    assert_eq!(
        report["deactivated"],
        json!(["bob@example.org"]),
        "{report}"
    );
    assert_eq!(
        report["role_changed"],
        json!([{"email": "alice@example.org", "from": "administrator", "to": "analyst"}])
    );
    assert_eq!(
        verify(&s, &bob_key).status,
        200,
        "a dry run changes nothing"
    );

    let done = sync(&s, &owner, id, false);
    assert_eq!(done.status, 200, "{}", done.body);
    // In force on the answer: bob's session and key are refused.
    assert_eq!(verify(&s, &bob_key).status, 401);
    assert_eq!(s.get("/api/auth/me/").bearer(&bob_token).send().status, 401);
    let alice_token = alice["access"].as_str().unwrap();
    assert_eq!(me(&s, alice_token)["role"], "analyst");
    assert_eq!(audit(&s, &owner, "directory.synced").len(), 2);

    // A wrong base finds no one: the sync would remove everyone, so it changes nothing.
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/organization/sso-providers/{id}/"),
        )
        .bearer(&owner)
        .json(&json!({"user_base": format!("ou=nobody,{SUFFIX}")}));
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = sync(&s, &owner, id, false);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(me(&s, alice_token)["role"], "analyst", "nothing changed");
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/organization/sso-providers/{id}/"),
        )
        .bearer(&owner)
        .json(&json!({"user_base": format!("ou=people,{SUFFIX}")}));
    assert_eq!(r.status, 200, "{}", r.body);

    // The shell runs the same sync.
    let out = s.cli(
        &[
            "directory",
            "sync",
            "--org",
            "Default Organization",
            "--dry-run",
        ],
        "",
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("unchanged     1") && printed.contains("dry run"),
        "{printed}"
    );

    // The directory down: sign-ins and syncs answer 503 and change nothing; the owner's own
    // password still works.
    slapd.stop();
    let down = s.login("alice@example.org", "alice-pw");
    assert_eq!(
        (down.status, down.error_code().as_str()),
        (503, "unavailable")
    );
    assert!(down.header("retry-after").is_some());
    assert_eq!(sync(&s, &owner, id, false).status, 503);
    assert_eq!(me(&s, alice_token)["role"], "analyst");
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 200);
    slapd.start_again();
    assert_eq!(s.login("alice@example.org", "alice-pw").status, 200);
    let deleted = s
        .request(
            "DELETE",
            &format!("/api/v1/organization/sso-providers/{id}/"),
        )
        .bearer(&owner)
        .send();
    assert_eq!(deleted.status, 204);
    assert_eq!(audit(&s, &owner, "sso_provider.deleted").len(), 1);
}

#[test]
fn a_leaver_removed_by_one_servers_sync_is_refused_by_every_server() {
    let slapd = Slapd::start();
    let a = with_directory(&slapd).postgres().start();
    let b = a.another_on_same_database();
    let owner = a.owner_token();
    let id = add_provider(&a, &owner, &slapd.provider())["id"]
        .as_i64()
        .unwrap();
    // Two users the provider manages: one leaving is not "everyone" (the safety rule).
    assert_eq!(a.login("alice@example.org", "alice-pw").status, 200);
    let bob = b.login("bob@example.org", "bob-pw").json();
    let bob_token = bob["access"].as_str().unwrap().to_string();
    let bob_key = create_key(&b, &bob_token, json!({"name": "bob's etl"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    s_alive(&b, &bob_key, &bob_token);
    slapd.modify("delete", "uid=bob,ou=people,dc=example,dc=org\n");
    let done = sync(&a, &owner, id, false);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["deactivated"], json!(["bob@example.org"]));
    // The answer came after B confirmed: B refuses bob's key and session at once.
    assert_eq!(verify(&b, &bob_key).status, 401);
    assert_eq!(b.get("/api/auth/me/").bearer(&bob_token).send().status, 401);
}

fn s_alive(s: &Server, key: &str, token: &str) {
    assert_eq!(verify(s, key).status, 200);
    assert_eq!(s.get("/api/auth/me/").bearer(token).send().status, 200);
}

#[test]
fn in_chromium_a_directory_user_signs_in_with_the_directory_password() {
    use crate::browser::Browser;
    let slapd = Slapd::start();
    let s = with_directory(&slapd).start();
    let owner = s.owner_token();
    add_provider(&s, &owner, &slapd.provider());

    let browser = Browser::start();
    browser.open(&s.url("/login"));
    browser.fill("#email", "bob@example.org");
    browser.click("#submit");
    assert!(browser
        .text("#directory-hint")
        .contains("Example directory password"));
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('.provider').length;",
            json!([])
        ),
        json!(0),
        "a directory has no button: its password goes in the form"
    );
    browser.fill("#password", "bob-pw");
    browser.click("#submit");
    browser.wait_for("location.pathname === '/'");
    assert_eq!(browser.text("#whoami"), "bob@example.org (analyst)");

    // The owner asks the console for a dry run of the sync: a report, nothing changed.
    browser.click("#logout");
    // The sign-out goes to the login page itself: opening it before that lands would find
    // the form of a page about to be replaced.
    browser.wait_for("location.pathname === '/login'");
    crate::web::sign_in(&browser, &s, ADMIN_EMAIL, ADMIN_PASSWORD);
    browser.open(&s.url("/settings/security/sso"));
    assert!(browser.text("#providers tbody").contains("LDAP"));
    browser.click("[data-dry-run]");
    let report = browser.text("#message");
    assert!(
        report.starts_with("Dry run of Example directory: 0 to deactivate"),
        "{report}"
    );
    assert!(report.contains("Nothing was changed"), "{report}");
}

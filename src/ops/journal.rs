//! The revocation journal, `<data_dir>/revocations.log`: one JSON line per change that takes
//! something back: a key revocation, a session ended, a deactivation, a limit put on a key that
//! stays live (the end of a rotation's overlap, an address allowlist), a password set (with its
//! new hash: the journal is as private as the database), an MFA reset or disable, a role
//! change, an ownership transfer and a public link revoked. Appended and synced after the
//! change commits and before it is answered. A restored backup misses what happened after it
//! was taken; `restore` re-applies from here, in feed order, every entry whose feed position
//! the backup does not hold, so that a restore never brings a revoked credential back.
//!
//! Entries carry the feed position of their change: a backup holds exactly the changes up to
//! its own feed head, whatever the clocks say. They also carry what tells the object apart
//! (a key's prefix, a session's user, a user's email, a link's token digest), so that an entry
//! is never applied to a different object that later took the same id.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::auth::live::Update;
use crate::domain::Id;

pub const FILE_NAME: &str = "revocations.log";

/// One journaled change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    ApiKey {
        id: Id,
        prefix: String,
    },
    /// A live key's limits as the change left them: its end (brought forward by a rotation
    /// with an overlap) and its allowlist. A restore never gives it a longer life or, unless a
    /// later entry says so, a wider list.
    ApiKeyLimited {
        id: Id,
        prefix: String,
        expires_at: Option<i64>,
        allowed_ips: Option<String>,
    },
    Session {
        id: Id,
        user_id: Id,
    },
    Deactivation {
        user_id: Id,
        email: String,
    },
    /// A new password (changed by the user, or set by an administrator): the old one stops
    /// working, with every session opened with it.
    PasswordSet {
        user_id: Id,
        email: String,
        password_hash: String,
        by_other: bool,
        /// Set by an administrator for the user to replace (entries of earlier versions: no).
        #[serde(default)]
        temporary: bool,
    },
    /// MFA turned off (reset by an administrator, or disabled by the user): a device that was
    /// lost or an enrolment made by someone else does not come back.
    MfaReset {
        user_id: Id,
        email: String,
    },
    /// TOTP turned off by its user: the old authenticator app does not come back (passkeys
    /// stay; entries of earlier versions are `MfaReset`).
    TotpDisabled {
        user_id: Id,
        email: String,
    },
    /// A passkey removed: a restore does not bring it back.
    PasskeyRemoved {
        user_id: Id,
        email: String,
        credential_id: String,
    },
    /// A role as a change left it (a demotion above all; promotions too, so that the last
    /// change made is the one a restore leaves).
    RoleChanged {
        user_id: Id,
        email: String,
        role: String,
    },
    OwnershipTransferred {
        organization_id: Id,
        from_user_id: Id,
        from_email: String,
        to_user_id: Id,
        to_email: String,
    },
    PublicLinkRevoked {
        id: Id,
        /// Hex SHA-256 of the link's token: the link is told apart without the token itself.
        token_sha256: String,
    },
}

impl Revocation {
    /// The journal entry of a public link revoked (by its owner, replaced, or with its
    /// resource).
    pub fn public_link(id: Id, token: &str) -> Self {
        use sha2::{Digest, Sha256};
        Revocation::PublicLinkRevoked {
            id,
            token_sha256: crate::domain::hex(&Sha256::digest(token.as_bytes())),
        }
    }

    /// The id of a session, key or link this entry names: restore moves id counters past them.
    pub fn numbered(&self) -> Option<(crate::store::ids::Counter, Id)> {
        use crate::store::ids::Counter;
        match self {
            Revocation::ApiKey { id, .. } | Revocation::ApiKeyLimited { id, .. } => {
                Some((Counter::ApiKeys, *id))
            }
            Revocation::Session { id, .. } => Some((Counter::Sessions, *id)),
            Revocation::PublicLinkRevoked { id, .. } => Some((Counter::PublicLinks, *id)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The feed position of the change that made it.
    pub seq: i64,
    /// Unix seconds, for people reading the file.
    pub at: i64,
    #[serde(flatten)]
    pub revocation: Revocation,
}

/// The revocations among the new states a change produced.
fn revocations(updates: &[Update]) -> impl Iterator<Item = Revocation> + '_ {
    updates.iter().filter_map(|update| match update {
        Update::Key(k) if k.revoked => Some(Revocation::ApiKey {
            id: k.id,
            prefix: k.prefix.clone(),
        }),
        Update::Key(k) if k.replaced || k.allowed_ips.is_some() => {
            Some(Revocation::ApiKeyLimited {
                id: k.id,
                prefix: k.prefix.clone(),
                expires_at: k.expires_at,
                allowed_ips: crate::ops::keys::allowed_ips_text(&k.allowed_ips),
            })
        }
        Update::Session(s) if s.revoked => Some(Revocation::Session {
            id: s.id,
            user_id: s.user_id,
        }),
        Update::User(u) if !u.is_active => Some(Revocation::Deactivation {
            user_id: u.id,
            email: u.email.clone(),
        }),
        _ => None,
    })
}

/// The open journal of a data directory. Appends are serialized; each is one `write` of
/// whole lines followed by `fsync`.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn open(data_dir: &Path) -> std::io::Result<Journal> {
        let path = data_dir.join(FILE_NAME);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        crate::data_dir::tighten(&path, 0o600).map_err(std::io::Error::other)?;
        // A line cut short by a crash must not swallow the next entry: end it first.
        let length = file.metadata()?.len();
        if length > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(length - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
        }
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals the revocations among `updates` and the entries the change named itself
    /// (`more`), all committed at feed position `seq`, and syncs them to disk. Nothing to
    /// journal: no write.
    pub fn record(
        &self,
        seq: i64,
        updates: &[Update],
        more: &[Revocation],
    ) -> std::io::Result<usize> {
        let at = crate::domain::now();
        let mut lines = Vec::new();
        let mut count = 0;
        for revocation in revocations(updates).chain(more.iter().cloned()) {
            let entry = Entry {
                seq,
                at,
                revocation,
            };
            serde_json::to_writer(&mut lines, &entry)?;
            lines.push(b'\n');
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("the journal lock is poisoned"))?;
        let before = file.metadata()?.len();
        if let Err(e) = file.write_all(&lines).and_then(|()| file.sync_data()) {
            // Never leave part of a line behind for the next entry to be glued to.
            let _ = file.set_len(before);
            return Err(e);
        }
        Ok(count)
    }
}

/// Every entry of a journal file, in feed order (two changes committed in one order may reach
/// the file in the other), entries of one change in file order; a missing file is an empty
/// journal. A line that does not parse (a write torn by a crash, which was then never
/// answered) is skipped and counted.
pub fn read(path: &Path) -> std::io::Result<(Vec<Entry>, usize)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let (mut entries, mut skipped) = (Vec::new(), 0);
    for line in bytes.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Bytes, not text: a write torn inside a character is one skipped line, not an error.
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => entries.push(entry),
            Err(_) => skipped += 1,
        }
    }
    entries.sort_by_key(|e| e.seq);
    Ok((entries, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::live::{KeyState, SessionState, UserState};
    use crate::domain::Role;

    fn key(id: Id, revoked: bool) -> Update {
        Update::Key(KeyState {
            id,
            user_id: 2,
            organization_id: 3,
            name: "k".into(),
            prefix: format!("claribi_key_{id:08}"),
            hash: [7; 32],
            scopes: None,
            created_at: 0,
            expires_at: None,
            revoked,
            last_used_at: None,
            ever_used: false,
            replaced: false,
            allowed_ips: None,
            canary: false,
        })
    }

    #[test]
    fn records_only_revocations_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let updates = vec![
            key(1, true),
            key(2, false),
            Update::Session(SessionState {
                id: 9,
                user_id: 4,
                expires_at: 100,
                last_seen_at: 0,
                revoked: true,
                secret: None,
                mfa_enrollment_required: false,
            }),
            Update::User(UserState {
                id: 4,
                organization_id: 3,
                email: "a@example.com".into(),
                name: String::new(),
                role: Role::Analyst,
                is_active: false,
                mfa_enabled: false,
                password_temporary: false,
                service_account: false,
            }),
        ];
        assert_eq!(journal.record(17, &updates, &[]).unwrap(), 3);
        assert_eq!(journal.record(18, &[key(5, false)], &[]).unwrap(), 0);
        let (entries, skipped) = read(journal.path()).unwrap();
        assert_eq!(skipped, 0);
        let kinds: Vec<_> = entries
            .iter()
            .map(|e| (e.seq, e.revocation.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    17,
                    Revocation::ApiKey {
                        id: 1,
                        prefix: "claribi_key_00000001".into()
                    }
                ),
                (17, Revocation::Session { id: 9, user_id: 4 }),
                (
                    17,
                    Revocation::Deactivation {
                        user_id: 4,
                        email: "a@example.com".into()
                    }
                ),
            ]
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(journal.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn limits_on_a_live_key_are_journaled_too() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let limited = |replaced: bool, nets: Option<Vec<&str>>| {
            let Update::Key(mut k) = key(3, false) else {
                unreachable!()
            };
            k.replaced = replaced;
            k.expires_at = Some(500);
            k.allowed_ips = nets.map(|n| n.iter().map(|t| t.parse().unwrap()).collect());
            Update::Key(k)
        };
        assert_eq!(journal.record(4, &[limited(true, None)], &[]).unwrap(), 1);
        assert_eq!(
            journal
                .record(
                    5,
                    &[limited(false, Some(vec!["10.0.0.0/8", "192.0.2.7/32"]))],
                    &[]
                )
                .unwrap(),
            1
        );
        assert_eq!(journal.record(6, &[limited(false, None)], &[]).unwrap(), 0);
        let (entries, _) = read(journal.path()).unwrap();
        let limits: Vec<_> = entries.into_iter().map(|e| e.revocation).collect();
        assert_eq!(
            limits,
            vec![
                Revocation::ApiKeyLimited {
                    id: 3,
                    prefix: "claribi_key_00000003".into(),
                    expires_at: Some(500),
                    allowed_ips: None,
                },
                Revocation::ApiKeyLimited {
                    id: 3,
                    prefix: "claribi_key_00000003".into(),
                    expires_at: Some(500),
                    allowed_ips: Some("10.0.0.0/8 192.0.2.7".into()),
                },
            ]
        );
    }

    #[test]
    fn an_entry_after_a_torn_line_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        // A crash cut the last line short, inside a character.
        let torn = b"{\"seq\":3,\"at\":1,\"kind\":\"session\",\"id\":1,\"user_id\":2}\n{\"seq\":4,\"at\":\"\xc3".to_vec();
        std::fs::write(&path, &torn).unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        journal.record(9, &[key(7, true)], &[]).unwrap();
        let (entries, skipped) = read(&path).unwrap();
        assert_eq!(skipped, 1);
        let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 9]);
    }

    #[test]
    fn entries_come_back_in_feed_order_whatever_the_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let narrowed = |nets: &str| Revocation::ApiKeyLimited {
            id: 3,
            prefix: "claribi_key_00000003".into(),
            expires_at: None,
            allowed_ips: Some(nets.into()),
        };
        // Two allowlist edits that committed as 8 then 9 reached the file as 9 then 8.
        journal.record(9, &[], &[narrowed("10.0.0.1")]).unwrap();
        journal.record(8, &[], &[narrowed("10.0.0.0/8")]).unwrap();
        let password = Revocation::PasswordSet {
            user_id: 4,
            email: "a@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$abc$def".into(),
            by_other: false,
            temporary: false,
        };
        journal
            .record(7, &[], std::slice::from_ref(&password))
            .unwrap();
        let (entries, _) = read(journal.path()).unwrap();
        let order: Vec<(i64, Revocation)> =
            entries.into_iter().map(|e| (e.seq, e.revocation)).collect();
        assert_eq!(
            order,
            vec![
                (7, password),
                (8, narrowed("10.0.0.0/8")),
                (9, narrowed("10.0.0.1")),
            ]
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(read(&path).unwrap().0.len(), 0);
        std::fs::write(
            &path,
            "{\"seq\":3,\"at\":1,\"kind\":\"session\",\"id\":1,\"user_id\":2}\n{\"seq\":4,\"at\"",
        )
        .unwrap();
        let (entries, skipped) = read(&path).unwrap();
        assert_eq!((entries.len(), skipped), (1, 1));
    }
}

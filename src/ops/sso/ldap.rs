//! The directory as claribi asks it (ldap3, over `ldaps://` or StartTLS, verified against the
//! system's roots plus `sso.ca_file`): find a user by address with the service account, check
//! a password by binding as the user, list every user for a sync, and resolve nested groups.
//!
//! Nested groups are walked by claribi itself, one read of each group's own `memberOf` per
//! group (cached for the length of a sync): it works the same against Active Directory and
//! OpenLDAP's memberof overlay, whereas AD's `1.2.840.113556.1.4.1941` matching rule is
//! silently unknown to OpenLDAP (zero entries, no error).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

use crate::domain::Secret;
use crate::store::sso::LdapSettings;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries per page of a listing (RFC 2696), under Active Directory's and slapd's limits.
const PAGE: i32 = 500;
/// Groups followed at most when resolving nesting: a cycle or a runaway tree stops here.
const MAX_GROUPS: usize = 2_000;
/// The result code of a search whose base does not exist.
const NO_SUCH_OBJECT: u32 = 32;
/// `userAccountControl`'s ACCOUNTDISABLE bit (Active Directory).
const ACCOUNT_DISABLED: i64 = 2;

/// Why the directory gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Not reachable, TLS refused, timed out: nothing can be said about the user.
    #[error("the directory cannot be reached: {0}")]
    Unreachable(String),
    /// It answered, but refused the service account or the search.
    #[error("the directory refused: {0}")]
    Refused(String),
}

fn unreachable(e: LdapError) -> DirectoryError {
    DirectoryError::Unreachable(e.to_string())
}

/// A user as the directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub dn: String,
    /// Lower case.
    pub email: String,
    pub name: String,
    /// Every group's DN, nested ones included when the provider asks for them.
    pub groups: Vec<String>,
    /// Active Directory says the account is disabled.
    pub disabled: bool,
}

pub struct Directory<'a> {
    settings: &'a LdapSettings,
    bind_password: Secret,
    tls: Arc<rustls::ClientConfig>,
}

/// A value of `attribute` in `entry`, whatever the case the server wrote its name in.
fn values<'e>(entry: &'e SearchEntry, attribute: &str) -> &'e [String] {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map_or(&[], |(_, v)| v.as_slice())
}

impl<'a> Directory<'a> {
    pub fn new(
        settings: &'a LdapSettings,
        bind_password: Secret,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Directory {
            settings,
            bind_password,
            tls,
        }
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        // Our own TCP connection, without Nagle's delay: LDAP is small requests each waiting
        // for its answer, which Nagle and delayed acknowledgements would hold up to 40 ms each.
        let address = host_and_port(&self.settings.url).ok_or_else(|| {
            DirectoryError::Unreachable(format!("{} is not an LDAP URL", self.settings.url))
        })?;
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address))
                .await
                .map_err(|_| {
                    DirectoryError::Unreachable(format!(
                        "{address}: no answer within {CONNECT_TIMEOUT:?}"
                    ))
                })?
                .map_err(|e| DirectoryError::Unreachable(format!("{address}: {e}")))?;
        let stream = stream
            .set_nodelay(true)
            .and_then(|()| stream.into_std())
            .map_err(|e| DirectoryError::Unreachable(format!("{address}: {e}")))?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(CONNECT_TIMEOUT)
            .set_config(self.tls.clone())
            .set_starttls(self.settings.start_tls)
            .set_std_stream(ldap3::StdStream::Tcp(stream));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(unreachable)?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// A connection bound as the service account.
    async fn service(&self) -> Result<Ldap, DirectoryError> {
        let mut ldap = self.connect().await?;
        let bound = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .simple_bind(&self.settings.bind_dn, self.bind_password.expose())
            .await
            .map_err(unreachable)?;
        if bound.rc != 0 {
            return Err(DirectoryError::Refused(format!(
                "the service account's bind was refused ({})",
                bound
            )));
        }
        Ok(ldap)
    }

    fn attributes(&self) -> Vec<&str> {
        vec![
            self.settings.email_attribute.as_str(),
            self.settings.name_attribute.as_str(),
            self.settings.group_attribute.as_str(),
            "userAccountControl",
        ]
    }

    fn person(&self, entry: &SearchEntry, groups: Vec<String>) -> Option<Person> {
        let email = values(entry, &self.settings.email_attribute)
            .first()?
            .trim()
            .to_lowercase();
        let control: i64 = values(entry, "userAccountControl")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Some(Person {
            dn: entry.dn.clone(),
            email,
            name: values(entry, &self.settings.name_attribute)
                .first()
                .cloned()
                .unwrap_or_default(),
            groups,
            disabled: control & ACCOUNT_DISABLED != 0,
        })
    }

    /// The user whose address is `email`, with their groups when `with_groups`; `None` when
    /// the directory has no one (or more than one) at that address.
    pub async fn find(
        &self,
        email: &str,
        with_groups: bool,
    ) -> Result<Option<Person>, DirectoryError> {
        let mut ldap = self.service().await?;
        let filter = self
            .settings
            .user_filter
            .replace("{email}", &ldap_escape(email));
        let answer = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .search(
                &self.settings.user_base,
                Scope::Subtree,
                &filter,
                self.attributes(),
            )
            .await
            .map_err(unreachable)?;
        if answer.1.rc == NO_SUCH_OBJECT {
            let _ = ldap.unbind().await;
            return Ok(None);
        }
        let (entries, _) = answer
            .success()
            .map_err(|e| DirectoryError::Refused(e.to_string()))?;
        let mut found: Vec<SearchEntry> = entries.into_iter().map(SearchEntry::construct).collect();
        if found.len() != 1 {
            let _ = ldap.unbind().await;
            return Ok(None);
        }
        let entry = found.remove(0);
        let groups = if with_groups {
            let mut cache = HashMap::new();
            self.groups(&mut ldap, &entry, &mut cache).await?
        } else {
            Vec::new()
        };
        let _ = ldap.unbind().await;
        Ok(self.person(&entry, groups))
    }

    /// Whether `password` is `dn`'s: a bind as the user, on a connection of its own. An
    /// empty password is refused before any bind (an empty simple bind is "unauthenticated"
    /// and some directories answer it with success).
    pub async fn check_password(
        &self,
        dn: &str,
        password: &Secret,
    ) -> Result<bool, DirectoryError> {
        if password.expose().is_empty() {
            return Ok(false);
        }
        let mut ldap = self.connect().await?;
        let bound = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .simple_bind(dn, password.expose())
            .await
            .map_err(unreachable)?;
        let _ = ldap.unbind().await;
        match bound.rc {
            0 => Ok(true),
            // busy, unavailable, other: the directory cannot say.
            51 | 52 | 80 => Err(DirectoryError::Refused(bound.to_string())),
            // invalidCredentials (AD also answers it for a disabled or locked account), and any
            // other refusal of this bind (unwillingToPerform, constraintViolation, ...): the
            // password is not taken, and the attempt counts against the throttle.
            _ => Ok(false),
        }
    }

    /// Every user the provider's filter matches under its base, page by page.
    pub async fn everyone(&self) -> Result<Vec<Person>, DirectoryError> {
        let mut ldap = self.service().await?;
        let filter = self.settings.user_filter.replace("{email}", "*");
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE)),
        ];
        let mut entries = Vec::new();
        {
            let mut search = ldap
                .with_timeout(OPERATION_TIMEOUT)
                .streaming_search_with(
                    adapters,
                    &self.settings.user_base,
                    Scope::Subtree,
                    &filter,
                    self.attributes(),
                )
                .await
                .map_err(unreachable)?;
            while let Some(entry) = search.next().await.map_err(unreachable)? {
                entries.push(SearchEntry::construct(entry));
            }
            let done = search.finish().await;
            // noSuchObject: the base is not there, an empty answer (the sync's safety rule
            // then decides); any other refusal is the directory's.
            if done.rc != 0 && done.rc != NO_SUCH_OBJECT {
                return Err(DirectoryError::Refused(done.to_string()));
            }
        }
        let mut cache = HashMap::new();
        let mut people = Vec::with_capacity(entries.len());
        for entry in &entries {
            let groups = self.groups(&mut ldap, entry, &mut cache).await?;
            if let Some(person) = self.person(entry, groups) {
                people.push(person);
            }
        }
        let _ = ldap.unbind().await;
        Ok(people)
    }

    /// The entry's groups: its own `group_attribute`, and with `nested_groups` every group
    /// those are members of, walked breadth first (`cache`: each group's own groups, read
    /// once per connection).
    async fn groups(
        &self,
        ldap: &mut Ldap,
        entry: &SearchEntry,
        cache: &mut HashMap<String, Vec<String>>,
    ) -> Result<Vec<String>, DirectoryError> {
        let direct = values(entry, &self.settings.group_attribute).to_vec();
        if !self.settings.nested_groups {
            return Ok(direct);
        }
        let mut seen: HashSet<String> = direct.iter().map(|g| g.to_lowercase()).collect();
        let mut all = direct.clone();
        let mut queue: VecDeque<String> = direct.into();
        while let Some(group) = queue.pop_front() {
            if seen.len() >= MAX_GROUPS {
                break;
            }
            let key = group.to_lowercase();
            let parents = match cache.get(&key) {
                Some(parents) => parents.clone(),
                None => {
                    let parents = self.own_groups(ldap, &group).await?;
                    cache.insert(key, parents.clone());
                    parents
                }
            };
            for parent in parents {
                if seen.insert(parent.to_lowercase()) {
                    all.push(parent.clone());
                    queue.push_back(parent);
                }
            }
        }
        Ok(all)
    }

    /// The groups `group` is itself a member of (none when it cannot be read).
    async fn own_groups(
        &self,
        ldap: &mut Ldap,
        group: &str,
    ) -> Result<Vec<String>, DirectoryError> {
        let answer = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .search(
                group,
                Scope::Base,
                "(objectClass=*)",
                vec![self.settings.group_attribute.as_str()],
            )
            .await
            .map_err(unreachable)?;
        let (entries, _) = match answer.success() {
            Ok(found) => found,
            // A group outside what the service account may read adds nothing.
            Err(_) => return Ok(Vec::new()),
        };
        Ok(entries
            .into_iter()
            .map(SearchEntry::construct)
            .flat_map(|e| values(&e, &self.settings.group_attribute).to_vec())
            .collect())
    }
}
/// `host:port` of an `ldap://` or `ldaps://` URL (389 and 636 by default).
fn host_and_port(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let default = match parsed.scheme() {
        "ldap" => 389,
        "ldaps" => 636,
        _ => return None,
    };
    let host = match parsed.host()? {
        url::Host::Ipv6(ip) => format!("[{ip}]"),
        other => other.to_string(),
    };
    Some(format!("{host}:{}", parsed.port().unwrap_or(default)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ldap_url_gives_the_address_to_connect_to() {
        assert_eq!(
            host_and_port("ldaps://dc1.corp.example.com").as_deref(),
            Some("dc1.corp.example.com:636")
        );
        assert_eq!(
            host_and_port("ldap://127.0.0.1:3890").as_deref(),
            Some("127.0.0.1:3890")
        );
        assert_eq!(host_and_port("ldap://[::1]").as_deref(), Some("[::1]:389"));
        assert_eq!(host_and_port("https://example.com"), None);
    }
}

//! The account directory: accounts, local domains and aliases, kept in plain files an
//! admin can edit by hand, Dovecot-compatible.
//!
//! Files under `<data_dir>/directory/`:
//! - `passwd`: Dovecot passwd-file lines, `user@domain:{SCHEME}hash[:uid:gid:gecos:home:shell:extra]`.
//!   Only the first two fields are used; the rest are kept unchanged. Lines pasted from
//!   Dovecot work as they are. A user name must be a full address. An empty password
//!   field disables login for that account (mail is still delivered). Password schemes:
//!   `ARGON2ID`, `ARGON2I`, `SHA512-CRYPT`, `SHA256-CRYPT`, `BLF-CRYPT`, `CRYPT` (any of
//!   those hash forms), and `PLAIN`/`CLEAR` for imported lines only. A field without
//!   `{SCHEME}` is read as `CRYPT`, as Dovecot's passwd-file does. New passwords are
//!   written as `{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$...`, as Dovecot writes them.
//! - `domains`: one local domain a line.
//! - `aliases`: `alias@domain: target@domain[, target2@domain]` a line.
//!
//! In all three, blank lines and lines starting with `#` are ignored, and addresses are
//! matched case-insensitively. Local domains are those in `domains` plus every domain
//! that has an account or an alias. Every change goes through a lock file, a temporary
//! file, fsync and rename, so the running server never reads a half-written file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use treehouse_core::address;
use treehouse_core::sasl::ScramKeys;

/// Folder under the data dir that holds the directory files.
pub const DIRECTORY_DIR: &str = "directory";
/// Accounts and password hashes, Dovecot passwd-file format.
pub const PASSWD_FILE: &str = "passwd";
/// Local domains, one a line.
pub const DOMAINS_FILE: &str = "domains";
/// Aliases, `alias@domain: target@domain[, ...]` a line.
pub const ALIASES_FILE: &str = "aliases";
/// Account created on a first start with no accounts.
pub const DEMO_ACCOUNT: &str = "demo@localhost";
/// Length of generated demo passwords.
pub const DEMO_PASSWORD_CHARS: usize = 16;
/// Argon2id memory cost of new hashes, Dovecot's default.
pub const ARGON2_MEMORY_KIB: u32 = 65536;
/// PBKDF2 iterations of new SCRAM-SHA-256 keys (RFC 7677 asks for at least 4096).
pub const SCRAM_ITERATIONS: u32 = 4096;
/// The passwd extra field that holds an account's SCRAM-SHA-256 keys.
pub const SCRAM_FIELD: &str = "scram_sha_256";
/// Argon2id time cost (passes) of new hashes, Dovecot's default.
pub const ARGON2_PASSES: u32 = 3;
/// Largest Argon2 memory cost accepted from a stored hash, so one line cannot exhaust memory.
pub const ARGON2_MEMORY_KIB_MAX: u32 = 1024 * 1024;

/// Where mail for an address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Deliver to these accounts (canonical, lower-case, at least one, no duplicates).
    /// One for a plain account; an alias may name several.
    Accounts(Vec<String>),
    /// The domain is local but no account or alias has this address.
    UnknownUser,
    /// The domain is not one of ours.
    ForeignDomain,
}

/// Size, change time and inode of one directory file, to notice edits cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len_bytes: u64,
    inode: u64,
}

/// Accounts, local domains and aliases loaded from `<data_dir>/directory/`.
#[derive(Debug, Clone)]
pub struct Directory {
    dir: PathBuf,
    default_domain: String,
    /// Account -> password field (`{SCHEME}hash`, possibly empty).
    users: BTreeMap<String, String>,
    /// Account -> SCRAM-SHA-256 keys, for accounts whose line has them.
    scram: BTreeMap<String, ScramKeys>,
    /// Local domains: the domains file plus account and alias domains.
    domains: BTreeSet<String>,
    /// Alias -> target addresses as written.
    aliases: BTreeMap<String, Vec<String>>,
    stamps: Vec<Option<FileStamp>>,
    /// Schemes already warned about, so each warning is printed once.
    warned_schemes: Arc<Mutex<BTreeSet<String>>>,
}

impl Directory {
    /// Reads the directory files under `data_dir`; missing files are empty. Every
    /// malformed line is reported with its file and line number. Bare local parts
    /// resolve in "localhost" until `with_default_domain` says otherwise.
    pub fn load(data_dir: &Path) -> Result<Directory, String> {
        let dir = data_dir.join(DIRECTORY_DIR);
        // Stamps first: an edit racing with this load is then noticed on the next check.
        let stamps = stamps(&dir);
        let mut problems = Vec::new();
        let passwd_path = dir.join(PASSWD_FILE);
        let users = parse_passwd(&read_optional(&passwd_path)?, &passwd_path, &mut problems);
        let domains_path = dir.join(DOMAINS_FILE);
        let mut domains =
            parse_domains(&read_optional(&domains_path)?, &domains_path, &mut problems);
        let aliases_path = dir.join(ALIASES_FILE);
        let aliases = parse_aliases(&read_optional(&aliases_path)?, &aliases_path, &mut problems);
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        for name in users.keys().chain(aliases.keys()) {
            if let Some((_, domain)) = address::split(name) {
                domains.insert(domain.to_string());
            }
        }
        let scram = users
            .iter()
            .filter_map(|(name, entry)| Some((name.clone(), entry.scram.clone()?)))
            .collect();
        Ok(Directory {
            dir,
            default_domain: "localhost".to_string(),
            users: users
                .into_iter()
                .map(|(name, entry)| (name, entry.password))
                .collect(),
            scram,
            domains,
            aliases,
            stamps,
            warned_schemes: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    /// Sets the domain given to bare local parts (`server.default_domain`).
    pub fn with_default_domain(mut self, domain: &str) -> Directory {
        self.default_domain = domain.trim().to_ascii_lowercase();
        self
    }

    /// Loads the files again, keeping the default domain; for use after `changed_on_disk`.
    pub fn reload(&self) -> Result<Directory, String> {
        let data_dir = self.dir.parent().unwrap_or(Path::new("."));
        let mut fresh = Directory::load(data_dir)?.with_default_domain(&self.default_domain);
        fresh.warned_schemes = Arc::clone(&self.warned_schemes);
        Ok(fresh)
    }

    /// True when a directory file was created, removed or replaced since this was loaded.
    pub fn changed_on_disk(&self) -> bool {
        stamps(&self.dir) != self.stamps
    }

    /// Where mail for `address` goes. A bare local part is in the default domain. An
    /// alias names one or more targets, each an account (aliases do not chain; targets
    /// that are not accounts are skipped). Subaddressing: `alice+anything@d` goes where
    /// `alice@d` goes, unless `alice+anything@d` is itself an account or alias.
    pub fn resolve(&self, address: &str) -> Resolution {
        let address = self.qualify(address);
        let Some((local, domain)) = address::split(&address) else {
            return Resolution::UnknownUser;
        };
        if !self.domains.contains(domain) {
            return Resolution::ForeignDomain;
        }
        if let Some(accounts) = self.lookup(&address) {
            return Resolution::Accounts(accounts);
        }
        if let Some((base, _detail)) = local.split_once('+')
            && !base.is_empty()
            && let Some(accounts) = self.lookup(&format!("{base}@{domain}"))
        {
            return Resolution::Accounts(accounts);
        }
        Resolution::UnknownUser
    }

    /// True when `password` is right for `account` (a bare local part is in the default
    /// domain). Unknown accounts, empty password fields and unsupported schemes give
    /// false; an unsupported scheme is also reported once on standard error.
    pub fn verify_password(&self, account: &str, password: &str) -> bool {
        let account = self.qualify(account);
        let Some(field) = self.users.get(&account) else {
            return false;
        };
        let (scheme, hash) = split_scheme(field);
        match check_password(&scheme, hash, password) {
            Some(ok) => ok,
            None => {
                self.warn_scheme(&scheme, &account);
                false
            }
        }
    }

    /// The canonical account for a login name when `password` is right for it.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<String> {
        let account = self.qualify(login);
        self.verify_password(&account, password).then_some(account)
    }

    /// The canonical account for a login name and its SCRAM-SHA-256 keys, if it has them.
    pub fn scram_keys(&self, login: &str) -> Option<(String, ScramKeys)> {
        let account = self.qualify(login);
        let keys = self.scram.get(&account)?.clone();
        Some((account, keys))
    }

    /// True when the authenticated `account` may use `sender` as its envelope sender:
    /// the account itself (or a `+detail` of it), or an alias that delivers to it.
    pub fn may_send_as(&self, account: &str, sender: &str) -> bool {
        let account = self.qualify(account);
        let sender = address::normalize(sender);
        let Some((local, domain)) = address::split(&sender) else {
            return false;
        };
        let owns = |name: &str| {
            self.lookup(name)
                .is_some_and(|accounts| accounts.contains(&account))
        };
        if owns(&sender) {
            return true;
        }
        // A `+detail` form of an address is owned with it, unless it is a name of its own.
        match local.split_once('+') {
            Some((base, _)) if !base.is_empty() && self.lookup(&sender).is_none() => {
                owns(&format!("{base}@{domain}"))
            }
            _ => false,
        }
    }

    /// Every account, sorted.
    pub fn accounts(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// Every local domain, sorted.
    pub fn domains(&self) -> Vec<String> {
        self.domains.iter().cloned().collect()
    }

    /// Every alias with its targets as written, sorted by alias.
    pub fn aliases(&self) -> Vec<(String, Vec<String>)> {
        self.aliases
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Creates `demo@localhost` with a random password when there is no account at all,
    /// and returns that password; `None` when accounts exist.
    pub fn ensure_demo(data_dir: &Path) -> Result<Option<String>, String> {
        let edit = Edit::begin(data_dir)?;
        if !edit.passwd()?.is_empty() {
            return Ok(None);
        }
        let password = random_password();
        edit.ensure_domain("localhost")?;
        edit.append_user(DEMO_ACCOUNT, &password)?;
        Ok(Some(password))
    }

    /// Adds account `address` with `password` (hashed with Argon2id), and its domain as
    /// a local domain if it is not one yet.
    pub fn add_user(data_dir: &Path, address: &str, password: &str) -> Result<(), String> {
        let account = checked_address(address, "account")?;
        check_new_password(password)?;
        let edit = Edit::begin(data_dir)?;
        if edit.passwd()?.contains_key(&account) {
            return Err(format!(
                "account {account} already exists; use `treehouse user passwd {account}` to change its password"
            ));
        }
        if edit.aliases()?.contains_key(&account) {
            return Err(format!(
                "{account} is an alias; remove it first with `treehouse alias del {account}`"
            ));
        }
        let domain = address::split(&account).map_or("", |(_, d)| d);
        edit.ensure_domain(domain)?;
        edit.append_user(&account, password)
    }

    /// Removes account `address`. Its stored mail and aliases naming it are left alone.
    pub fn del_user(data_dir: &Path, address: &str) -> Result<(), String> {
        let account = address::normalize(address);
        let edit = Edit::begin(data_dir)?;
        let Some(entry) = edit.passwd()?.remove(&account) else {
            return Err(no_such_account(&account));
        };
        edit.rewrite(PASSWD_FILE, 0o600, |number, _| {
            (number != entry.line_number).then_some(None)
        })
    }

    /// Replaces the password of account `address` (hashed with Argon2id), keeping the
    /// other passwd fields of its line.
    pub fn set_password(data_dir: &Path, address: &str, password: &str) -> Result<(), String> {
        let account = address::normalize(address);
        check_new_password(password)?;
        let edit = Edit::begin(data_dir)?;
        let Some(entry) = edit.passwd()?.remove(&account) else {
            return Err(no_such_account(&account));
        };
        let hash = hash_password(password)?;
        let keys = scram_keys_for(password);
        edit.rewrite(PASSWD_FILE, 0o600, |number, line| {
            if number != entry.line_number {
                return Some(None);
            }
            let (user, rest) = line.split_once(':').unwrap_or((line, ""));
            let mut fields: Vec<&str> = rest.splitn(7, ':').collect();
            fields.resize(7, "");
            let extra = with_scram_field(fields[6], &keys);
            fields[0] = &hash;
            fields[6] = &extra;
            Some(Some(format!("{user}:{}", fields.join(":"))))
        })
    }

    /// Adds `targets` (existing accounts) to alias `alias`, creating it if needed.
    pub fn add_alias(data_dir: &Path, alias: &str, targets: &[String]) -> Result<(), String> {
        let alias = checked_address(alias, "alias")?;
        if targets.is_empty() {
            return Err(format!(
                "alias {alias} needs a target; name an account after it"
            ));
        }
        let edit = Edit::begin(data_dir)?;
        let users = edit.passwd()?;
        if users.contains_key(&alias) {
            return Err(format!(
                "{alias} is an account; an address is either an account or an alias"
            ));
        }
        let mut wanted = Vec::new();
        for target in targets {
            let target = address::normalize(target);
            if !users.contains_key(&target) {
                return Err(format!(
                    "alias target {target} is not an account; add it first with `treehouse user add {target}`"
                ));
            }
            wanted.push(target);
        }
        let mut aliases = edit.aliases()?;
        let line_number = aliases.get(&alias).map(|a| a.line_number);
        let mut all = aliases
            .remove(&alias)
            .map(|a| a.targets)
            .unwrap_or_default();
        for target in wanted {
            if !all.contains(&target) {
                all.push(target);
            }
        }
        let line = format!("{alias}: {}", all.join(", "));
        let domain = address::split(&alias).map_or("", |(_, d)| d);
        edit.ensure_domain(domain)?;
        match line_number {
            Some(replace) => edit.rewrite(ALIASES_FILE, 0o644, |number, _| {
                Some((number == replace).then(|| line.clone()))
            }),
            None => edit.append(ALIASES_FILE, 0o644, &line),
        }
    }

    /// Removes alias `alias` and all its targets.
    pub fn del_alias(data_dir: &Path, alias: &str) -> Result<(), String> {
        let alias = address::normalize(alias);
        let edit = Edit::begin(data_dir)?;
        let Some(entry) = edit.aliases()?.remove(&alias) else {
            return Err(format!(
                "there is no alias {alias}; `treehouse alias list` shows the aliases"
            ));
        };
        edit.rewrite(ALIASES_FILE, 0o644, |number, _| {
            (number != entry.line_number).then_some(None)
        })
    }

    /// Adds `domain` to the local domains.
    pub fn add_domain(data_dir: &Path, domain: &str) -> Result<(), String> {
        let domain = domain.trim().to_ascii_lowercase();
        check_domain(&domain)?;
        let edit = Edit::begin(data_dir)?;
        if edit.domains()?.contains(&domain) {
            return Err(format!("{domain} is already a local domain; nothing to do"));
        }
        edit.append(DOMAINS_FILE, 0o644, &domain)
    }

    fn qualify(&self, name: &str) -> String {
        let name = address::normalize(name);
        if name.contains('@') {
            name
        } else {
            format!("{name}@{}", self.default_domain)
        }
    }

    /// Accounts for an exact alias or account name.
    fn lookup(&self, address: &str) -> Option<Vec<String>> {
        if let Some(targets) = self.aliases.get(address) {
            let mut accounts: Vec<String> = Vec::new();
            for target in targets {
                if let Some(account) = self.account_of_target(target)
                    && !accounts.contains(&account)
                {
                    accounts.push(account);
                }
            }
            return (!accounts.is_empty()).then_some(accounts);
        }
        self.users
            .contains_key(address)
            .then(|| vec![address.to_string()])
    }

    /// The account an alias target names, with subaddressing.
    fn account_of_target(&self, target: &str) -> Option<String> {
        if self.users.contains_key(target) {
            return Some(target.to_string());
        }
        let (local, domain) = address::split(target)?;
        let (base, _detail) = local.split_once('+')?;
        let account = format!("{base}@{domain}");
        self.users.contains_key(&account).then_some(account)
    }

    fn warn_scheme(&self, scheme: &str, account: &str) {
        let first = match self.warned_schemes.lock() {
            Ok(mut warned) => warned.insert(scheme.to_string()),
            Err(_) => false,
        };
        if first {
            eprintln!(
                "treehouse: warning: account {account} has a password in scheme {{{scheme}}}, which treehouse cannot check, so its logins fail; set a new password with `treehouse user passwd {account}`"
            );
        }
    }
}

/// A passwd line: its password field and where it is.
#[derive(Debug, Clone)]
struct PasswdEntry {
    password: String,
    scram: Option<ScramKeys>,
    line_number: usize,
}

/// An aliases line: its targets and where it is.
#[derive(Debug, Clone)]
struct AliasEntry {
    targets: Vec<String>,
    line_number: usize,
}

/// The content lines of a file: (1-based number, text), skipping blanks and comments.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let trimmed = line.trim();
        (!trimmed.is_empty() && !trimmed.starts_with('#')).then_some((i + 1, trimmed))
    })
}

/// The value of the SCRAM keys extra field in the fields after a passwd line's user
/// name (`password:uid:gid:gecos:home:shell:extra`), if present.
fn scram_field(fields: &str) -> Option<&str> {
    let extra = fields.splitn(7, ':').nth(6)?;
    extra
        .split_whitespace()
        .find_map(|field| field.strip_prefix(SCRAM_FIELD)?.strip_prefix('='))
}

/// The extra fields of a passwd line with the SCRAM keys field set to `keys`.
fn with_scram_field(extra: &str, keys: &str) -> String {
    let mut fields: Vec<&str> = extra
        .split_whitespace()
        .filter(|f| f.split('=').next() != Some(SCRAM_FIELD))
        .collect();
    let ours = format!("{SCRAM_FIELD}={keys}");
    fields.push(&ours);
    fields.join(" ")
}

/// New SCRAM-SHA-256 keys for `password`, in their stored form.
fn scram_keys_for(password: &str) -> String {
    use rand::RngCore;
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    ScramKeys::derive(password, &salt, SCRAM_ITERATIONS).encode()
}

fn parse_passwd(
    text: &str,
    path: &Path,
    problems: &mut Vec<String>,
) -> BTreeMap<String, PasswdEntry> {
    let mut users: BTreeMap<String, PasswdEntry> = BTreeMap::new();
    for (number, line) in content_lines(text) {
        let Some((user, rest)) = line.split_once(':') else {
            problems.push(format!(
                "{} line {number}: no ':' after the user name; write it as user@domain:{{SCHEME}}hash",
                path.display()
            ));
            continue;
        };
        let user = address::normalize(user);
        if address::split(&user).is_none() || user.contains(char::is_whitespace) {
            problems.push(format!(
                "{} line {number}: user {user:?} is not a full address; write it as user@domain",
                path.display()
            ));
            continue;
        }
        let password = rest.split(':').next().unwrap_or("").trim().to_string();
        let scram = match scram_field(rest).map(ScramKeys::decode) {
            None => None,
            Some(Some(keys)) => Some(keys),
            Some(None) => {
                problems.push(format!(
                    "{} line {number}: {SCRAM_FIELD} is malformed; remove it, or set a new password with `treehouse user passwd {user}`",
                    path.display()
                ));
                continue;
            }
        };
        if let Some(earlier) = users.get(&user) {
            problems.push(format!(
                "{} line {number}: {user} is already on line {}; remove one of them",
                path.display(),
                earlier.line_number
            ));
            continue;
        }
        users.insert(
            user,
            PasswdEntry {
                password,
                scram,
                line_number: number,
            },
        );
    }
    users
}

fn parse_domains(text: &str, path: &Path, problems: &mut Vec<String>) -> BTreeSet<String> {
    let mut domains = BTreeSet::new();
    for (number, line) in content_lines(text) {
        let domain = line.to_ascii_lowercase();
        match check_domain(&domain) {
            Ok(()) => {
                domains.insert(domain);
            }
            Err(e) => problems.push(format!("{} line {number}: {e}", path.display())),
        }
    }
    domains
}

fn parse_aliases(
    text: &str,
    path: &Path,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Vec<String>> {
    parse_alias_entries(text, path, problems)
        .into_iter()
        .map(|(alias, entry)| (alias, entry.targets))
        .collect()
}

fn parse_alias_entries(
    text: &str,
    path: &Path,
    problems: &mut Vec<String>,
) -> BTreeMap<String, AliasEntry> {
    let mut aliases: BTreeMap<String, AliasEntry> = BTreeMap::new();
    for (number, line) in content_lines(text) {
        let place = format!("{} line {number}", path.display());
        let Some((alias, targets)) = line.split_once(':') else {
            problems.push(format!(
                "{place}: no ':' after the alias; write it as alias@domain: target@domain"
            ));
            continue;
        };
        let alias = address::normalize(alias);
        if address::split(&alias).is_none() || alias.contains(char::is_whitespace) {
            problems.push(format!(
                "{place}: alias {alias:?} is not a full address; write it as alias@domain"
            ));
            continue;
        }
        let targets: Vec<String> = targets
            .split(',')
            .map(address::normalize)
            .filter(|t| !t.is_empty())
            .collect();
        if targets.is_empty() {
            problems.push(format!(
                "{place}: alias {alias} has no target; add one after the ':'"
            ));
            continue;
        }
        if let Some(bad) = targets
            .iter()
            .find(|t| address::split(t).is_none() || t.contains(char::is_whitespace))
        {
            problems.push(format!(
                "{place}: target {bad:?} is not a full address; separate targets with ','"
            ));
            continue;
        }
        if let Some(earlier) = aliases.get(&alias) {
            problems.push(format!(
                "{place}: alias {alias} is already on line {}; merge the two lines",
                earlier.line_number
            ));
            continue;
        }
        aliases.insert(
            alias,
            AliasEntry {
                targets,
                line_number: number,
            },
        );
    }
    aliases
}

/// Splits a password field into its upper-case scheme and the hash; no braces = CRYPT.
fn split_scheme(field: &str) -> (String, &str) {
    if let Some(rest) = field.strip_prefix('{')
        && let Some((scheme, hash)) = rest.split_once('}')
    {
        return (scheme.trim().to_ascii_uppercase(), hash);
    }
    ("CRYPT".to_string(), field)
}

/// Checks `password` against `hash` in `scheme`; `None` when the scheme or hash form is
/// not supported.
fn check_password(scheme: &str, hash: &str, password: &str) -> Option<bool> {
    if hash.is_empty() {
        return Some(false);
    }
    match scheme {
        "ARGON2ID" | "ARGON2I" => check_argon2(hash, password),
        "SHA512-CRYPT" => Some(sha_crypt::sha512_check(password, hash).is_ok()),
        "SHA256-CRYPT" => Some(sha_crypt::sha256_check(password, hash).is_ok()),
        "BLF-CRYPT" => Some(bcrypt::verify(password, hash).unwrap_or(false)),
        "PLAIN" | "CLEAR" => Some(equal_constant_time(hash.as_bytes(), password.as_bytes())),
        "CRYPT" => {
            if hash.starts_with("$6$") {
                check_password("SHA512-CRYPT", hash, password)
            } else if hash.starts_with("$5$") {
                check_password("SHA256-CRYPT", hash, password)
            } else if hash.starts_with("$2") {
                check_password("BLF-CRYPT", hash, password)
            } else if hash.starts_with("$argon2") {
                check_argon2(hash, password)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn check_argon2(hash: &str, password: &str) -> Option<bool> {
    use argon2::PasswordVerifier;
    let Ok(parsed) = argon2::PasswordHash::new(hash) else {
        return Some(false);
    };
    let algorithm = parsed.algorithm.as_str();
    if algorithm != "argon2id" && algorithm != "argon2i" && algorithm != "argon2d" {
        return None;
    }
    let memory_kib = parsed.params.get_decimal("m").unwrap_or(0);
    if memory_kib > ARGON2_MEMORY_KIB_MAX {
        return Some(false);
    }
    Some(
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
    )
}

fn equal_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes `password` as Dovecot's `{ARGON2ID}` scheme writes it.
fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    use rand::RngCore;
    let mut salt_bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt_bytes);
    let salt = argon2::password_hash::SaltString::encode_b64(&salt_bytes)
        .map_err(|e| format!("cannot encode a password salt: {e}; try again"))?;
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None)
        .map_err(|e| format!("bad Argon2 parameters: {e}; this is a bug in treehouse"))?;
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let hash = hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("cannot hash the password: {e}; try again"))?;
    Ok(format!("{{ARGON2ID}}{hash}"))
}

fn random_password() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(DEMO_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

fn check_new_password(password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the password is empty; give a non-empty password".to_string());
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err("the password contains a line break or NUL; choose another".to_string());
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    let valid = !domain.is_empty()
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{domain:?} is not a domain name; use letters, digits, '-' and '.', e.g. example.com"
        ))
    }
}

/// Lower-cases `address` and checks it is a plain `local@domain` fit for an account or alias.
fn checked_address(address: &str, what: &str) -> Result<String, String> {
    let address = address::normalize(address);
    let Some((local, domain)) = address::split(&address) else {
        return Err(format!(
            "{what} {address:?} is not a full address; write it as name@domain"
        ));
    };
    check_domain(domain)?;
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-=!$%&'*/?^`{|}~".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(format!(
            "{what} {address:?} has characters treehouse does not accept in a name ('+' is for subaddressing); use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(address)
}

fn no_such_account(account: &str) -> String {
    format!("there is no account {account}; `treehouse user list` shows the accounts")
}

fn read_optional(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!(
            "cannot read {}: {e}; check that it is a UTF-8 text file treehouse may read",
            path.display()
        )),
    }
}

fn stamps(dir: &Path) -> Vec<Option<FileStamp>> {
    [PASSWD_FILE, DOMAINS_FILE, ALIASES_FILE]
        .iter()
        .map(|name| {
            let meta = std::fs::metadata(dir.join(name)).ok()?;
            Some(FileStamp {
                modified: meta.modified().ok(),
                len_bytes: meta.len(),
                inode: meta.ino(),
            })
        })
        .collect()
}

/// An exclusive edit of the directory files, held until dropped.
struct Edit {
    dir: PathBuf,
    _lock: File,
}

impl Edit {
    fn begin(data_dir: &Path) -> Result<Edit, String> {
        let dir = data_dir.join(DIRECTORY_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create {}: {e}; check that the data dir is writable",
                dir.display()
            )
        })?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                format!(
                    "cannot open {}: {e}; check permissions",
                    lock_path.display()
                )
            })?;
        lock.lock().map_err(|e| {
            format!(
                "cannot lock {}: {e}; check permissions",
                lock_path.display()
            )
        })?;
        Ok(Edit { dir, _lock: lock })
    }

    fn read(&self, name: &str) -> Result<String, String> {
        read_optional(&self.dir.join(name))
    }

    /// Parses a file for editing; any malformed line stops the edit.
    fn parsed<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str, &Path, &mut Vec<String>) -> T,
    ) -> Result<T, String> {
        let path = self.dir.join(name);
        let mut problems = Vec::new();
        let parsed = parse(&self.read(name)?, &path, &mut problems);
        if problems.is_empty() {
            Ok(parsed)
        } else {
            problems.push(format!("fix {} before changing it", path.display()));
            Err(problems.join("\n"))
        }
    }

    fn passwd(&self) -> Result<BTreeMap<String, PasswdEntry>, String> {
        self.parsed(PASSWD_FILE, parse_passwd)
    }

    fn domains(&self) -> Result<BTreeSet<String>, String> {
        self.parsed(DOMAINS_FILE, parse_domains)
    }

    fn aliases(&self) -> Result<BTreeMap<String, AliasEntry>, String> {
        self.parsed(ALIASES_FILE, parse_alias_entries)
    }

    fn ensure_domain(&self, domain: &str) -> Result<(), String> {
        if self.domains()?.contains(domain) {
            return Ok(());
        }
        self.append(DOMAINS_FILE, 0o644, domain)
    }

    fn append_user(&self, account: &str, password: &str) -> Result<(), String> {
        let line = format!(
            "{account}:{}::::::{SCRAM_FIELD}={}",
            hash_password(password)?,
            scram_keys_for(password)
        );
        self.append(PASSWD_FILE, 0o600, &line)
    }

    fn append(&self, name: &str, mode: u32, line: &str) -> Result<(), String> {
        let mut text = self.read(name)?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        self.replace(name, mode, &text)
    }

    /// Rewrites file `name` line by line: `edit(number, line)` returns `None` to drop
    /// the line, `Some(None)` to keep it, `Some(Some(text))` to replace it.
    fn rewrite(
        &self,
        name: &str,
        mode: u32,
        mut edit: impl FnMut(usize, &str) -> Option<Option<String>>,
    ) -> Result<(), String> {
        let old = self.read(name)?;
        let mut text = String::with_capacity(old.len());
        for (i, line) in old.lines().enumerate() {
            match edit(i + 1, line) {
                None => continue,
                Some(None) => text.push_str(line),
                Some(Some(new)) => text.push_str(&new),
            }
            text.push('\n');
        }
        self.replace(name, mode, &text)
    }

    /// Replaces file `name` with `text`: temporary file, fsync, rename, fsync of the folder.
    fn replace(&self, name: &str, mode: u32, text: &str) -> Result<(), String> {
        let path = self.dir.join(name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let failed = |what: &str, e: std::io::Error| {
            format!(
                "cannot {what} {}: {e}; check free space and permissions of {}",
                temp.display(),
                self.dir.display()
            )
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)
            .map_err(|e| failed("create", e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| failed("write", e))?;
        file.sync_all().map_err(|e| failed("sync", e))?;
        drop(file);
        std::fs::rename(&temp, &path).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}; check permissions",
                temp.display(),
                path.display()
            )
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                format!(
                    "cannot sync folder {}: {e}; check the disk",
                    self.dir.display()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Password of every known-good hash below.
    const PASSWORD: &str = "correct horse";
    /// `python3 -c "import crypt; print(crypt.crypt('correct horse', crypt.mksalt(crypt.METHOD_SHA512)))"`
    const SHA512_PYTHON: &str = "$6$te2obWY99H.46mrz$SfDxToNfrhXvvS/TsDKizGisDCVlHYcleNqGZA8yBBhGyVaMcKwCfflOW/xvPudLbkbG5JluB2orblJ0sDJ50/";
    /// `openssl passwd -6 -salt saltsalt 'correct horse'`
    const SHA512_OPENSSL: &str = "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0";
    /// `openssl passwd -5 -salt saltsalt 'correct horse'`
    const SHA256_OPENSSL: &str = "$5$saltsalt$myjXcpMpE2Ofk7fj9hqyNYSn6lmWG4Mqnjx.KIRRr4/";
    /// `python3 -c "import crypt; print(crypt.crypt('correct horse', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"`
    const BCRYPT_PYTHON: &str = "$2b$04$bPnlE6ztnP17lyxU2gMkye71qLANTWUOg7eh26MyoO6e05iMTW9Qa";
    /// The Argon2 reference implementation's test vector: password "password", salt
    /// "somesalt", t=2, m=256 KiB, p=1.
    const ARGON2ID_REFERENCE: &str =
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
    /// The same vector for Argon2i.
    const ARGON2I_REFERENCE: &str =
        "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8";

    /// A fresh, empty data dir removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir()
                .join(format!("treehouse-directory-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn write(&self, name: &str, text: &str) {
            let dir = self.0.join(DIRECTORY_DIR);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), text).unwrap();
        }

        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.0.join(DIRECTORY_DIR).join(name)).unwrap()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn accounts(list: &[&str]) -> Resolution {
        Resolution::Accounts(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn hashes_from_other_tools_verify() {
        let data = TempDir::new("hashes");
        data.write(
            PASSWD_FILE,
            &format!(
                "# pasted from Dovecot\n\
                 sha512@example.test:{{SHA512-CRYPT}}{SHA512_PYTHON}\n\
                 openssl@example.test:{{SHA512-CRYPT}}{SHA512_OPENSSL}:1000:1000::/home/o::userdb_quota_rule=*:storage=1G\n\
                 sha256@example.test:{{SHA256-CRYPT}}{SHA256_OPENSSL}\n\
                 blf@example.test:{{BLF-CRYPT}}{BCRYPT_PYTHON}\n\
                 blfy@example.test:{{blf-crypt}}{}\n\
                 argon@example.test:{{ARGON2ID}}{ARGON2ID_REFERENCE}\n\
                 argoni@example.test:{{ARGON2I}}{ARGON2I_REFERENCE}\n\
                 crypt@example.test:{SHA512_OPENSSL}\n\
                 plain@example.test:{{PLAIN}}correct horse\n",
                BCRYPT_PYTHON.replacen("$2b$", "$2y$", 1)
            ),
        );
        let directory = Directory::load(&data.0).unwrap();
        for account in [
            "sha512@example.test",
            "openssl@example.test",
            "sha256@example.test",
            "blf@example.test",
            "blfy@example.test",
            "crypt@example.test",
            "plain@example.test",
        ] {
            assert!(directory.verify_password(account, PASSWORD), "{account}");
            assert!(
                !directory.verify_password(account, "wrong horse"),
                "{account}"
            );
        }
        assert!(directory.verify_password("argon@example.test", "password"));
        assert!(!directory.verify_password("argon@example.test", PASSWORD));
        assert!(directory.verify_password("argoni@example.test", "password"));
        assert!(directory.verify_password("ARGON@Example.Test", "password"));
        assert!(!directory.verify_password("nobody@example.test", PASSWORD));
    }

    #[test]
    fn unknown_scheme_and_empty_password_refuse() {
        let data = TempDir::new("schemes");
        data.write(
            PASSWD_FILE,
            "md5@example.test:{MD5-CRYPT}$1$abc$def\nnone@example.test:\nold@example.test:$1$abc$def\n",
        );
        let directory = Directory::load(&data.0).unwrap();
        assert!(!directory.verify_password("md5@example.test", "$1$abc$def"));
        assert!(!directory.verify_password("none@example.test", ""));
        assert!(!directory.verify_password("old@example.test", "$1$abc$def"));
        assert_eq!(
            directory.resolve("none@example.test"),
            accounts(&["none@example.test"])
        );
    }

    #[test]
    fn malformed_lines_are_reported_with_numbers() {
        let data = TempDir::new("malformed");
        data.write(PASSWD_FILE, "# comment\n\nalice@example.test:{PLAIN}x\nbroken line\nbob:{PLAIN}y\nalice@EXAMPLE.test:{PLAIN}z\n");
        data.write(ALIASES_FILE, "postmaster@example.test alice@example.test\n");
        data.write(DOMAINS_FILE, "example.test\nnot a domain\n");
        let err = Directory::load(&data.0).unwrap_err();
        assert!(err.contains("passwd line 4"), "{err}");
        assert!(err.contains("passwd line 5"), "{err}");
        assert!(
            err.contains("passwd line 6") && err.contains("line 3"),
            "{err}"
        );
        assert!(err.contains("aliases line 1"), "{err}");
        assert!(err.contains("domains line 2"), "{err}");
        assert!(!err.contains("passwd line 3:"), "{err}");
        // An edit refuses to touch a broken file.
        let edit_err = Directory::add_user(&data.0, "carol@example.test", "pw").unwrap_err();
        assert!(edit_err.contains("passwd line 4"), "{edit_err}");
    }

    #[test]
    fn aliases_subaddressing_and_case() {
        let data = TempDir::new("resolve");
        data.write(
            PASSWD_FILE,
            "alice@example.test:{PLAIN}a\nbob@example.test:{PLAIN}b\nfan+club@example.test:{PLAIN}c\n",
        );
        data.write(DOMAINS_FILE, "example.test\nother.test\n");
        data.write(
            ALIASES_FILE,
            "postmaster@example.test: alice@example.test\n\
             team@example.test: Alice@example.test, bob+lists@example.test, alice@example.test\n\
             gone@example.test: ghost@example.test\n\
             info@alias.test: bob@example.test\n",
        );
        let directory = Directory::load(&data.0)
            .unwrap()
            .with_default_domain("Example.Test");
        assert_eq!(
            directory.resolve("alice@example.test"),
            accounts(&["alice@example.test"])
        );
        assert_eq!(
            directory.resolve("<ALICE@Example.TEST>"),
            accounts(&["alice@example.test"])
        );
        assert_eq!(
            directory.resolve("alice"),
            accounts(&["alice@example.test"])
        );
        assert_eq!(
            directory.resolve("alice+news@example.test"),
            accounts(&["alice@example.test"])
        );
        assert_eq!(
            directory.resolve("fan+club@example.test"),
            accounts(&["fan+club@example.test"])
        );
        assert_eq!(
            directory.resolve("postmaster@example.test"),
            accounts(&["alice@example.test"])
        );
        assert_eq!(
            directory.resolve("postmaster+x@example.test"),
            accounts(&["alice@example.test"])
        );
        assert_eq!(
            directory.resolve("team@example.test"),
            accounts(&["alice@example.test", "bob@example.test"])
        );
        assert_eq!(
            directory.resolve("info@alias.test"),
            accounts(&["bob@example.test"])
        );
        assert_eq!(
            directory.resolve("gone@example.test"),
            Resolution::UnknownUser
        );
        assert_eq!(
            directory.resolve("carol@example.test"),
            Resolution::UnknownUser
        );
        assert_eq!(
            directory.resolve("carol@other.test"),
            Resolution::UnknownUser
        );
        assert_eq!(
            directory.resolve("+x@example.test"),
            Resolution::UnknownUser
        );
        assert_eq!(
            directory.resolve("alice@elsewhere.test"),
            Resolution::ForeignDomain
        );
        assert_eq!(
            directory.domains(),
            vec!["alias.test", "example.test", "other.test"]
        );
        assert_eq!(
            directory.authenticate("Alice", "a"),
            Some("alice@example.test".to_string())
        );
        assert_eq!(directory.authenticate("alice", "b"), None);
    }

    #[test]
    fn senders_are_the_account_its_details_and_its_aliases() {
        let data = TempDir::new("senders");
        data.write(
            PASSWD_FILE,
            "a@example.test:{PLAIN}x\nb@example.test:{PLAIN}y\nb+list@example.test:{PLAIN}z\n",
        );
        data.write(
            ALIASES_FILE,
            "team@example.test: a@example.test, b@example.test\nsales@example.test: b@example.test\n",
        );
        let directory = Directory::load(&data.0)
            .unwrap()
            .with_default_domain("example.test");
        assert!(directory.may_send_as("a@example.test", "A@Example.Test"));
        assert!(directory.may_send_as("a", "a+news@example.test"));
        assert!(directory.may_send_as("a@example.test", "team@example.test"));
        assert!(!directory.may_send_as("a@example.test", "sales@example.test"));
        assert!(!directory.may_send_as("a@example.test", "b@example.test"));
        assert!(!directory.may_send_as("a@example.test", "a@elsewhere.test"));
        assert!(!directory.may_send_as("a@example.test", ""));
        // b+list is an account of its own, not a detail of b.
        assert!(!directory.may_send_as("b@example.test", "b+list@example.test"));
    }

    #[test]
    fn malformed_scram_keys_are_reported_with_their_line() {
        let data = TempDir::new("scram");
        data.write(
            PASSWD_FILE,
            "a@example.test:{PLAIN}x::::::scram_sha_256=4096,notbase64!,x,y\n",
        );
        let err = Directory::load(&data.0).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("scram_sha_256"),
            "{err}"
        );
    }

    #[test]
    fn add_del_round_trip() {
        let data = TempDir::new("edit");
        data.write(
            PASSWD_FILE,
            "# kept comment\nold@example.test:{PLAIN}x:1000:1000::/home/old::\n",
        );
        Directory::add_user(&data.0, "Alice@New.Test", "s3cret").unwrap();
        let passwd = data.read(PASSWD_FILE);
        assert!(
            passwd
                .starts_with("# kept comment\nold@example.test:{PLAIN}x:1000:1000::/home/old::\n"),
            "{passwd}"
        );
        assert!(
            passwd.contains("alice@new.test:{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$"),
            "{passwd}"
        );
        assert_eq!(data.read(DOMAINS_FILE), "new.test\n");
        let directory = Directory::load(&data.0).unwrap();
        assert!(directory.verify_password("alice@new.test", "s3cret"));
        assert!(!directory.verify_password("alice@new.test", "S3cret"));
        assert!(
            Directory::add_user(&data.0, "alice@new.test", "again")
                .unwrap_err()
                .contains("already exists")
        );
        assert!(Directory::add_user(&data.0, "no-domain", "pw").is_err());
        assert!(Directory::add_user(&data.0, "a+b@new.test", "pw").is_err());
        assert!(Directory::add_user(&data.0, "a:b@new.test", "pw").is_err());
        assert!(Directory::add_user(&data.0, "c@new.test", "").is_err());

        Directory::set_password(&data.0, "old@example.test", "fresh").unwrap();
        let passwd = data.read(PASSWD_FILE);
        assert!(
            passwd.contains(":1000:1000::/home/old::scram_sha_256=4096,"),
            "{passwd}"
        );
        let directory = Directory::load(&data.0).unwrap();
        assert!(directory.verify_password("old@example.test", "fresh"));
        assert!(!directory.verify_password("old@example.test", "x"));
        for (account, password) in [("old@example.test", "fresh"), ("alice@new.test", "s3cret")] {
            let (found, keys) = directory.scram_keys(account).unwrap();
            assert_eq!(found, account);
            assert_eq!(
                keys,
                ScramKeys::derive(password, &keys.salt, SCRAM_ITERATIONS)
            );
        }

        Directory::add_alias(
            &data.0,
            "postmaster@new.test",
            &["alice@new.test".to_string()],
        )
        .unwrap();
        Directory::add_alias(
            &data.0,
            "postmaster@new.test",
            &["old@example.test".to_string()],
        )
        .unwrap();
        assert_eq!(
            data.read(ALIASES_FILE),
            "postmaster@new.test: alice@new.test, old@example.test\n"
        );
        assert!(
            Directory::add_alias(&data.0, "x@new.test", &["ghost@new.test".to_string()]).is_err()
        );
        assert!(
            Directory::add_alias(&data.0, "alice@new.test", &["old@example.test".to_string()])
                .is_err()
        );
        assert!(Directory::add_user(&data.0, "postmaster@new.test", "pw").is_err());
        let directory = Directory::load(&data.0).unwrap();
        assert_eq!(
            directory.resolve("postmaster@new.test"),
            accounts(&["alice@new.test", "old@example.test"])
        );
        Directory::del_alias(&data.0, "postmaster@new.test").unwrap();
        assert!(Directory::del_alias(&data.0, "postmaster@new.test").is_err());

        Directory::add_domain(&data.0, "Third.Test").unwrap();
        assert!(Directory::add_domain(&data.0, "third.test").is_err());
        assert!(Directory::add_domain(&data.0, "bad domain").is_err());

        Directory::del_user(&data.0, "ALICE@new.test").unwrap();
        assert!(
            Directory::del_user(&data.0, "alice@new.test")
                .unwrap_err()
                .contains("no account")
        );
        let directory = Directory::load(&data.0).unwrap();
        assert_eq!(directory.accounts(), vec!["old@example.test"]);
        assert_eq!(directory.resolve("alice@new.test"), Resolution::UnknownUser);
        assert_eq!(
            directory.domains(),
            vec!["example.test", "new.test", "third.test"]
        );
        assert!(data.read(PASSWD_FILE).starts_with("# kept comment\n"));
    }

    #[test]
    fn demo_account_only_when_empty() {
        let data = TempDir::new("demo");
        let password = Directory::ensure_demo(&data.0).unwrap().unwrap();
        assert_eq!(password.len(), DEMO_PASSWORD_CHARS);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(Directory::ensure_demo(&data.0).unwrap(), None);
        let directory = Directory::load(&data.0).unwrap();
        assert_eq!(directory.accounts(), vec![DEMO_ACCOUNT]);
        assert!(directory.verify_password(DEMO_ACCOUNT, &password));
        assert_eq!(directory.resolve("demo"), accounts(&[DEMO_ACCOUNT]));
    }

    #[test]
    fn edits_are_noticed_and_reloaded() {
        let data = TempDir::new("reload");
        data.write(PASSWD_FILE, "alice@example.test:{PLAIN}a\n");
        let directory = Directory::load(&data.0)
            .unwrap()
            .with_default_domain("example.test");
        assert!(!directory.changed_on_disk());
        Directory::add_user(&data.0, "bob@example.test", "b").unwrap();
        assert!(directory.changed_on_disk());
        let fresh = directory.reload().unwrap();
        assert!(!fresh.changed_on_disk());
        assert_eq!(fresh.resolve("bob"), accounts(&["bob@example.test"]));
        assert!(fresh.verify_password("bob", "b"));
    }

    /// The runtime shares one directory between executor threads.
    const _: fn() = || {
        fn shared<T: Send + Sync>() {}
        shared::<Directory>();
    };

    #[test]
    fn missing_directory_is_empty() {
        let data = TempDir::new("missing");
        let directory = Directory::load(&data.0).unwrap();
        assert!(directory.accounts().is_empty());
        assert_eq!(
            directory.resolve("alice@localhost"),
            Resolution::ForeignDomain
        );
    }
}

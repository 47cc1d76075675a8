//! Mailbox commands: names, LIST (plain and extended, RFC 5258/5819/6154), LSUB, CREATE,
//! DELETE, RENAME, SUBSCRIBE, STATUS.

use imap_codec::imap_types::core::{AString, Quoted};
use imap_codec::imap_types::extensions::list_extended::{
    MboxListExtendedItemTag, TaggedExtComp, TaggedExtVal,
};

use super::*;

impl Session {
    pub(super) fn name_of(&self, mailbox: &Mailbox<'_>) -> Result<String, NameError> {
        let name = match mailbox {
            Mailbox::Inbox => return Ok(store::INBOX.to_string()),
            Mailbox::Other(other) => self.decode_name(other.as_ref())?,
        };
        Ok(names::canonical(&name))
    }

    pub(super) fn checked_name(&self, mailbox: &Mailbox<'_>) -> Result<String, NameError> {
        let mut name = self.name_of(mailbox)?;
        if name.len() > 1 && name.ends_with(names::SEPARATOR) {
            name.pop();
        }
        names::check(
            &name,
            self.cfg.mailbox_name_max_bytes,
            self.cfg.mailbox_depth_max,
        )?;
        Ok(name)
    }

    /// Whether mailbox names travel in UTF-8 (UTF8=ACCEPT or IMAP4rev2) rather than
    /// modified UTF-7.
    fn utf8_names(&self) -> bool {
        self.utf8 || self.rev2
    }

    pub(super) fn wire_name(&self, name: &str) -> String {
        if self.utf8_names() {
            name.to_string()
        } else {
            names::encode_utf7(name)
        }
    }

    /// The mailbox's name, or None after answering the command with the name's error.
    pub(super) fn name_or_reply(&mut self, tag: &str, mailbox: &Mailbox<'_>) -> Option<String> {
        self.name_of(mailbox)
            .map_err(|e| self.name_error(tag, &e))
            .ok()
    }

    /// The mailbox's checked name, or None after answering with the name's error.
    pub(super) fn checked_name_or_reply(
        &mut self,
        tag: &str,
        mailbox: &Mailbox<'_>,
    ) -> Option<String> {
        self.checked_name(mailbox)
            .map_err(|e| self.name_error(tag, &e))
            .ok()
    }

    pub(super) fn name_error(&mut self, tag: &str, error: &NameError) {
        match error {
            NameError::Encoding => self.line(&format!("{tag} BAD {error}")),
            NameError::Rule(_) => self.line(&format!("{tag} NO [CANNOT] {error}")),
        }
    }

    /// LIST (plain or extended, RFC 5258 with RFC 5819 and RFC 6154) and LSUB.
    pub(super) fn list(
        &mut self,
        ctx: &mut Ctx<'_>,
        reference: &Mailbox<'_>,
        patterns: &[ListMailbox<'_>],
        query: &ListQuery,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let verb = if query.lsub { "LSUB" } else { "LIST" };
        if self.rev2 && query.status.contains(&StatusDataItemName::Recent) {
            self.line(&format!("{tag} BAD RECENT is not in IMAP4rev2"));
            return None;
        }
        let reference = match reference {
            Mailbox::Inbox => Ok("INBOX".to_string()),
            Mailbox::Other(o) => self.decode_name(o.as_ref()),
        };
        let patterns: Result<Vec<String>, NameError> = patterns
            .iter()
            .map(|p| match p {
                ListMailbox::Token(t) => self.decode_name(t.as_ref()),
                ListMailbox::String(s) => self.decode_name(s.as_ref()),
            })
            .collect();
        let (reference, patterns) = match (reference, patterns) {
            (Ok(r), Ok(p)) => (r, p),
            (Err(e), _) | (_, Err(e)) => {
                self.name_error(&tag, &e);
                return None;
            }
        };
        // Only a plain LIST or LSUB treats the empty name as a request for the
        // delimiter; an extended LIST ignores empty patterns (RFC 5258 §3).
        if !query.extended && patterns.iter().all(String::is_empty) {
            self.line(&format!("* {verb} (\\Noselect) \"/\" \"\""));
            self.line(&format!("{tag} OK {verb} completed"));
            return None;
        }
        let full: Vec<String> = patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{reference}{p}"))
            .collect();
        let view = ListView::new(ctx);
        for (name, listing) in view.listed(query, &full) {
            self.list_line(ctx, &view, query, &name, listing);
        }
        self.line(&format!("{tag} OK {verb} completed"));
        None
    }

    /// A name (or pattern) as the client sent it, in UTF-8.
    fn decode_name(&self, bytes: &[u8]) -> Result<String, NameError> {
        if self.utf8_names() {
            String::from_utf8(bytes.to_vec()).map_err(|_| NameError::Encoding)
        } else {
            names::decode_utf7(bytes)
        }
    }

    /// The LIST response of the mailbox just selected (IMAP4rev2, RFC 9051 §6.3.2):
    /// with OLDNAME when `mailbox` as supplied differs from its name `name`.
    pub(super) fn selected_list_line(&mut self, ctx: &Ctx<'_>, mailbox: &Mailbox<'_>, name: &str) {
        let view = ListView::new(ctx);
        if let Some(old) = self.supplied_name(mailbox, name) {
            self.oldname_line(name, &old, true, view.has_children(name));
            let held = mem::take(&mut self.held);
            self.out.extend_from_slice(&held);
            return;
        }
        let listing = Listing {
            selected: true,
            descendant_unlisted: false,
        };
        self.list_line(ctx, &view, &ListQuery::default(), name, listing);
    }

    /// The name the client supplied for `mailbox` when treehouse knows the mailbox as
    /// `name` instead (RFC 9051 §6.3.9.7), else None. INBOX in any case is INBOX by
    /// definition (RFC 9051 §5.1), and a trailing separator declares a level rather than
    /// being part of the name (RFC 9051 §6.3.4).
    pub(super) fn supplied_name(&self, mailbox: &Mailbox<'_>, name: &str) -> Option<String> {
        let Mailbox::Other(other) = mailbox else {
            return None;
        };
        let supplied = self.decode_name(other.as_ref()).ok()?;
        let supplied = match supplied.strip_suffix(names::SEPARATOR) {
            Some(level) if !level.is_empty() && !name.ends_with(names::SEPARATOR) => level,
            _ => supplied.as_str(),
        };
        (supplied != name).then(|| supplied.to_string())
    }

    /// In an IMAP4rev2 session, the LIST response saying that the mailbox the client
    /// named `old` is `name` (the OLDNAME extended data item, RFC 9051 §6.3.9.7), with
    /// the attributes `name` has once the command succeeds. It is held until the
    /// command's change is durable, and sent before its tagged OK.
    pub(super) fn oldname_line(&mut self, name: &str, old: &str, exists: bool, children: bool) {
        if !self.rev2 {
            return;
        }
        let mut attrs: Vec<&str> = Vec::new();
        if !exists {
            attrs.push("NonExistent");
        }
        let items = attribute_items(attrs, name, children);
        // Quoted, as in the examples of RFC 9051 §6.3.4 and §6.3.9.7.
        let tag = Quoted::try_from("OLDNAME")
            .map(AString::from)
            .ok()
            .and_then(|t| MboxListExtendedItemTag::try_from(t).ok());
        let (Some(tag), Ok(old), Ok(mailbox)) = (
            tag,
            AString::try_from(self.wire_name(old)),
            Mailbox::try_from(self.wire_name(name)),
        ) else {
            return;
        };
        let list = Data::List {
            items,
            delimiter: QuotedChar::try_from(names::SEPARATOR).ok(),
            mailbox,
            extended_items: vec![MboxListExtendedItem::Other {
                tag,
                value: TaggedExtVal::Comp(Some(TaggedExtComp::Single(old))),
            }],
        };
        let bytes = ResponseCodec::new().encode(&Response::Data(list)).dump();
        self.held.extend_from_slice(&bytes);
    }

    /// One LIST or LSUB response, and its STATUS response when LIST-STATUS asks.
    fn list_line(
        &mut self,
        ctx: &Ctx<'_>,
        view: &ListView,
        query: &ListQuery,
        name: &str,
        listing: Listing,
    ) {
        let exists = view.existing.contains(name);
        let mut attrs: Vec<&str> = Vec::new();
        if query.lsub && !listing.selected {
            // A level above subscribed names that the pattern stops at, itself not
            // subscribed (RFC 3501 §6.3.9).
            attrs.push("Noselect");
        } else if !exists {
            // \NonExistent implies \Noselect (RFC 5258 §3.4).
            attrs.push(if query.extended || self.rev2 {
                "NonExistent"
            } else {
                "Noselect"
            });
        }
        if query.return_subscribed && view.subscriptions.contains(name) {
            attrs.push("Subscribed");
        }
        let items = attribute_items(attrs, name, view.has_children(name));
        let Ok(mailbox) = Mailbox::try_from(self.wire_name(name)) else {
            return;
        };
        let delimiter = QuotedChar::try_from(names::SEPARATOR).ok();
        if query.lsub {
            self.data(Data::Lsub {
                items,
                delimiter,
                mailbox,
            });
            return;
        }
        let extended_items = if query.recursive && listing.descendant_unlisted {
            vec![MboxListExtendedItem::ChildInfo(Vec1::from(
                ListSelectBaseOpt::Subscribed,
            ))]
        } else {
            Vec::new()
        };
        self.data(Data::List {
            items,
            delimiter,
            mailbox: mailbox.clone(),
            extended_items,
        });
        // LIST-STATUS: STATUS for each selectable mailbox listed (RFC 5819 §2).
        if let (false, Some(m)) = (query.status.is_empty(), ctx.mailbox(name)) {
            self.data(Data::Status {
                mailbox,
                items: status_items(m, &query.status).into(),
            });
        }
    }

    pub(super) fn apply(&mut self, tag: String, then: After, ops: Vec<Op>) -> Option<Action> {
        self.pending = Some(Pending::Apply { tag, then });
        Some(Action::Apply(ops))
    }

    pub(super) fn subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        mailbox: &Mailbox<'_>,
        on: bool,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let name = self.checked_name_or_reply(&tag, mailbox)?;
        let account = ctx.account.clone();
        let (op, done) = if on {
            (Op::Subscribe { account, name }, "SUBSCRIBE completed")
        } else {
            (Op::Unsubscribe { account, name }, "UNSUBSCRIBE completed")
        };
        self.apply(tag, After::Plain { done }, vec![op])
    }

    pub(super) fn create(&mut self, ctx: &mut Ctx<'_>, mailbox: &Mailbox<'_>) -> Option<Action> {
        let tag = ctx.tag.clone();
        let name = self.checked_name_or_reply(&tag, mailbox)?;
        if ctx.mailbox(&name).is_some() {
            self.line(&format!("{tag} NO [ALREADYEXISTS] Mailbox already exists"));
            return None;
        }
        let mut ops = Vec::new();
        let mut at = 0;
        while let Some(p) = name[at..].find(names::SEPARATOR) {
            let parent = &name[..at + p];
            if ctx.mailbox(parent).is_none() {
                ops.push(Op::CreateMailbox {
                    account: ctx.account.clone(),
                    name: parent.to_string(),
                });
            }
            at += p + 1;
        }
        if self.rev2
            && let Some(old) = self.supplied_name(mailbox, &name)
        {
            let children = ListView::new(ctx).has_children(&name);
            self.oldname_line(&name, &old, true, children);
        }
        ops.push(Op::CreateMailbox {
            account: ctx.account.clone(),
            name,
        });
        self.apply(
            tag,
            After::Plain {
                done: "CREATE completed",
            },
            ops,
        )
    }

    pub(super) fn delete(&mut self, ctx: &mut Ctx<'_>, mailbox: &Mailbox<'_>) -> Option<Action> {
        let tag = ctx.tag.clone();
        let name = self.name_or_reply(&tag, mailbox)?;
        if name == store::INBOX {
            self.line(&format!("{tag} NO [CANNOT] INBOX cannot be deleted"));
            return None;
        }
        if ctx.mailbox(&name).is_none() {
            self.line(&format!("{tag} NO [NONEXISTENT] No such mailbox"));
            return None;
        }
        if self.rev2
            && let Some(old) = self.supplied_name(mailbox, &name)
        {
            let children = ListView::new(ctx).has_children(&name);
            self.oldname_line(&name, &old, false, children);
        }
        if self.selected.as_ref().is_some_and(|s| s.name == name) {
            self.selected = None;
        }
        let op = Op::DeleteMailbox {
            account: ctx.account.clone(),
            name,
        };
        self.apply(
            tag,
            After::Plain {
                done: "DELETE completed",
            },
            vec![op],
        )
    }

    pub(super) fn rename(
        &mut self,
        ctx: &mut Ctx<'_>,
        from_mailbox: &Mailbox<'_>,
        to_mailbox: &Mailbox<'_>,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let (from, to) = match (self.name_of(from_mailbox), self.checked_name(to_mailbox)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => {
                self.name_error(&tag, &e);
                return None;
            }
        };
        let Some(source) = ctx.mailbox(&from) else {
            self.line(&format!("{tag} NO [NONEXISTENT] No such mailbox"));
            return None;
        };
        if ctx.mailbox(&to).is_some() || to == store::INBOX {
            self.line(&format!(
                "{tag} NO [ALREADYEXISTS] Target mailbox already exists"
            ));
            return None;
        }
        if from == store::INBOX {
            let messages: Vec<store::Message> = source.messages.values().cloned().collect();
            if messages.iter().map(|m| m.size_bytes).sum::<u64>() > self.cfg.copy_max_bytes {
                let limit = self.cfg.copy_max_bytes;
                self.line(&format!(
                    "{tag} NO [LIMIT] INBOX holds more than {limit} bytes; move messages in parts"
                ));
                return None;
            }
            let mut ops = vec![Op::CreateMailbox {
                account: ctx.account.clone(),
                name: to.clone(),
            }];
            let mut uids = Vec::new();
            for m in messages {
                let body = match ctx.store.read_body(store::INBOX, m.uid) {
                    Ok(b) => b,
                    Err(e) => {
                        self.line(&format!("{tag} NO [SERVERBUG] {e}"));
                        return None;
                    }
                };
                uids.push(m.uid);
                ops.push(Op::Append {
                    account: ctx.account.clone(),
                    mailbox: to.clone(),
                    flags: m.flags.clone(),
                    internal_date: m.internal_date,
                    meta: m.meta.to_vec(),
                    body,
                });
            }
            if self.rev2 {
                let children = ListView::new(ctx).has_children(&to);
                self.renamed_line(from_mailbox, &from, to_mailbox, &to, children);
            }
            return self.apply(tag, After::RenameInbox { uids }, ops);
        }
        let prefix = format!("{from}/");
        let mut ops = vec![Op::RenameMailbox {
            account: ctx.account.clone(),
            from: from.clone(),
            to: to.clone(),
        }];
        for child in ctx
            .mailboxes()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
        {
            let new = format!("{to}/{}", &child[prefix.len()..]);
            if names::check(
                &new,
                self.cfg.mailbox_name_max_bytes,
                self.cfg.mailbox_depth_max,
            )
            .is_err()
            {
                self.line(&format!(
                    "{tag} NO [CANNOT] A renamed child would break the naming rules"
                ));
                return None;
            }
            ops.push(Op::RenameMailbox {
                account: ctx.account.clone(),
                from: child,
                to: new,
            });
        }
        if self.rev2 {
            let children = ops.len() > 1 || ListView::new(ctx).has_children(&to);
            self.renamed_line(from_mailbox, &from, to_mailbox, &to, children);
        }
        if self.selected.as_ref().is_some_and(|s| s.name == from) {
            self.selected = None;
        }
        self.apply(
            tag,
            After::Plain {
                done: "RENAME completed",
            },
            ops,
        )
    }

    /// RENAME's LIST response with OLDNAME when either name was supplied otherwise than
    /// treehouse knows it: the new name, with the existing name as supplied (RFC 9051
    /// §6.3.6).
    fn renamed_line(
        &mut self,
        from_mailbox: &Mailbox<'_>,
        from: &str,
        to_mailbox: &Mailbox<'_>,
        to: &str,
        children: bool,
    ) {
        let old = match self.supplied_name(from_mailbox, from) {
            Some(supplied) => supplied,
            None if self.supplied_name(to_mailbox, to).is_some() => from.to_string(),
            None => return,
        };
        self.oldname_line(to, &old, true, children);
    }

    pub(super) fn status(
        &mut self,
        ctx: &mut Ctx<'_>,
        mailbox: &Mailbox<'_>,
        items: &[StatusDataItemName],
    ) {
        let tag = ctx.tag.clone();
        let name = match self.name_of(mailbox) {
            Ok(n) => n,
            Err(e) => return self.name_error(&tag, &e),
        };
        if self.rev2 && items.contains(&StatusDataItemName::Recent) {
            return self.line(&format!("{tag} BAD RECENT is not in IMAP4rev2"));
        }
        let Some(m) = ctx.mailbox(&name) else {
            return self.line(&format!("{tag} NO [NONEXISTENT] No such mailbox"));
        };
        let out = status_items(m, items);
        if let Ok(mailbox) = Mailbox::try_from(self.wire_name(&name)) {
            self.data(Data::Status {
                mailbox,
                items: out.into(),
            });
        }
        self.line(&format!("{tag} OK STATUS completed"));
    }
}

/// The special use of a mailbox every account has, as an attribute name.
fn special_use(name: &str) -> Option<&'static str> {
    DEFAULT_MAILBOXES
        .iter()
        .find(|(n, u)| *n == name && !u.is_empty())
        .map(|(_, u)| *u)
}

/// The STATUS data of `m` for `items`, in their order.
pub(super) fn status_items(
    m: &store::Mailbox,
    items: &[StatusDataItemName],
) -> Vec<StatusDataItem> {
    let count =
        |f: &dyn Fn(&store::Message) -> bool| m.messages.values().filter(|x| f(x)).count() as u32;
    let has = |x: &store::Message, flag: &str| x.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
    items
        .iter()
        .map(|item| match item {
            StatusDataItemName::Messages => StatusDataItem::Messages(m.messages.len() as u32),
            StatusDataItemName::Recent => StatusDataItem::Recent(0),
            StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(m.uid_next)),
            StatusDataItemName::UidValidity => StatusDataItem::UidValidity(nz(m.uidvalidity)),
            StatusDataItemName::Unseen => StatusDataItem::Unseen(count(&|x| !has(x, "\\Seen"))),
            StatusDataItemName::Deleted => StatusDataItem::Deleted(count(&|x| has(x, "\\Deleted"))),
            StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                m.messages
                    .values()
                    .filter(|x| has(x, "\\Deleted"))
                    .map(|x| x.size_bytes)
                    .sum(),
            ),
            StatusDataItemName::Size => {
                StatusDataItem::Size(m.messages.values().map(|x| x.size_bytes).sum())
            }
            StatusDataItemName::HighestModSeq => StatusDataItem::HighestModSeq(m.highest_modseq),
        })
        .collect()
}

/// What a LIST or LSUB asks for: RFC 5258 selection and return options.
#[derive(Debug, Default)]
pub(super) struct ListQuery {
    /// LSUB rather than LIST.
    pub(super) lsub: bool,
    /// An extended LIST: empty patterns are ignored, missing names are \NonExistent.
    pub(super) extended: bool,
    /// SUBSCRIBED selection: subscribed names rather than existing mailboxes.
    pub(super) subscribed: bool,
    /// SPECIAL-USE selection: only mailboxes with a special use.
    pub(super) special_use: bool,
    /// RECURSIVEMATCH: also parents of selected names the patterns leave out.
    pub(super) recursive: bool,
    /// Report \Subscribed (the SUBSCRIBED return option, implied by the selection).
    pub(super) return_subscribed: bool,
    /// LIST-STATUS items to report for each selectable mailbox listed.
    pub(super) status: Vec<StatusDataItemName>,
}

impl ListQuery {
    /// The query of an extended LIST; an option given twice counts once (RFC 5258 §3).
    pub(super) fn extended(selection: &[ListSelectOption], returns: &[ListReturnOption]) -> Self {
        let mut query = ListQuery {
            extended: true,
            ..ListQuery::default()
        };
        for option in selection {
            match option {
                ListSelectOption::Subscribed => {
                    query.subscribed = true;
                    query.return_subscribed = true;
                }
                ListSelectOption::SpecialUse => query.special_use = true,
                ListSelectOption::RecursiveMatch => query.recursive = true,
                // No remote mailboxes exist.
                ListSelectOption::Remote => {}
            }
        }
        for option in returns {
            match option {
                ListReturnOption::Subscribed => query.return_subscribed = true,
                ListReturnOption::Status(items) => {
                    for item in items.as_ref() {
                        if !query.status.contains(item) {
                            query.status.push(item.clone());
                        }
                    }
                }
                // Children and special-use attributes are always reported.
                ListReturnOption::Children | ListReturnOption::SpecialUse => {}
            }
        }
        query
    }
}

/// The account's names as LIST sees them.
struct ListView {
    /// Existing mailboxes.
    existing: BTreeSet<String>,
    /// Existing mailboxes and the levels of hierarchy above them.
    all: BTreeSet<String>,
    /// Subscribed names, existing or not.
    subscriptions: BTreeSet<String>,
}

impl ListView {
    fn new(ctx: &Ctx<'_>) -> Self {
        let existing: BTreeSet<String> = ctx.mailboxes().into_iter().collect();
        let mut all = existing.clone();
        for name in &existing {
            all.extend(ancestors(name).map(str::to_string));
        }
        let subscriptions = ctx
            .store
            .shard()
            .account(&ctx.account)
            .map(|a| a.subscriptions.clone())
            .unwrap_or_default();
        Self {
            existing,
            all,
            subscriptions,
        }
    }

    fn has_children(&self, name: &str) -> bool {
        let prefix = format!("{name}{}", names::SEPARATOR);
        self.all
            .range(prefix.clone()..)
            .next()
            .is_some_and(|n| n.starts_with(&prefix))
    }

    /// The names to list, in order, each with why it is listed.
    fn listed(&self, query: &ListQuery, patterns: &[String]) -> BTreeMap<String, Listing> {
        let from_subscriptions = query.lsub || query.subscribed;
        let pool = if from_subscriptions {
            &self.subscriptions
        } else {
            &self.all
        };
        let selected = |name: &str| !query.special_use || special_use(name).is_some();
        let matches = |name: &str| patterns.iter().any(|p| names::matches(p, name));
        let mut listed: BTreeMap<String, Listing> = pool
            .iter()
            .filter(|n| selected(n) && matches(n))
            .map(|n| {
                let listing = Listing {
                    selected: true,
                    descendant_unlisted: false,
                };
                (n.clone(), listing)
            })
            .collect();
        // A level that matches is listed when a selected name below it does not match:
        // with CHILDINFO under RECURSIVEMATCH (RFC 5258 §3.5), and by LSUB, as \Noselect
        // unless subscribed itself (RFC 3501 §6.3.9: `LSUB "" %` with only "foo/bar"
        // subscribed returns "foo"). Descendants that are listed themselves add nothing
        // (RFC 5258 §3.5 suppresses redundant CHILDINFO).
        if query.recursive || query.lsub {
            for name in pool.iter().filter(|n| selected(n) && !matches(n)) {
                for parent in ancestors(name).filter(|p| matches(p)) {
                    listed
                        .entry(parent.to_string())
                        .or_default()
                        .descendant_unlisted = true;
                }
            }
        }
        listed
    }
}

/// A LIST response's attributes: `attrs`, then whether `name` has children and its
/// special use (RFC 5258 §4, RFC 6154 §2).
fn attribute_items<'a>(
    mut attrs: Vec<&'a str>,
    name: &str,
    children: bool,
) -> Vec<FlagNameAttribute<'a>> {
    attrs.push(if children {
        "HasChildren"
    } else {
        "HasNoChildren"
    });
    if let Some(usage) = special_use(name) {
        attrs.push(usage);
    }
    attrs
        .iter()
        .filter_map(|a| Atom::try_from(*a).ok().map(FlagNameAttribute::from))
        .collect()
}

/// Why a name is listed.
#[derive(Debug, Clone, Copy, Default)]
struct Listing {
    /// The name itself meets the selection criteria (and matches a pattern).
    selected: bool,
    /// A descendant meets the selection criteria but matches no pattern.
    descendant_unlisted: bool,
}

/// The levels of hierarchy above `name` (`a` and `a/b` for `a/b/c`).
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(names::SEPARATOR)
        .map(|(at, _)| &name[..at])
}

//! Mailbox commands: names, LIST/LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, STATUS.

use super::*;

impl Session {
    pub(super) fn name_of(&self, mailbox: &Mailbox<'_>) -> Result<String, NameError> {
        let name = match mailbox {
            Mailbox::Inbox => return Ok(store::INBOX.to_string()),
            Mailbox::Other(other) => {
                let bytes = other.as_ref();
                if self.utf8 {
                    String::from_utf8(bytes.to_vec()).map_err(|_| NameError::Encoding)?
                } else {
                    names::decode_utf7(bytes)?
                }
            }
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

    pub(super) fn wire_name(&self, name: &str) -> String {
        if self.utf8 {
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

    pub(super) fn list(
        &mut self,
        ctx: &mut Ctx<'_>,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let verb = if lsub { "LSUB" } else { "LIST" };
        let reference = match reference {
            Mailbox::Inbox => Ok("INBOX".to_string()),
            Mailbox::Other(o) if self.utf8 => {
                String::from_utf8(o.as_ref().to_vec()).map_err(|_| NameError::Encoding)
            }
            Mailbox::Other(o) => names::decode_utf7(o.as_ref()),
        };
        let pattern_bytes = match pattern {
            ListMailbox::Token(t) => t.as_ref().to_vec(),
            ListMailbox::String(s) => s.as_ref().to_vec(),
        };
        let pattern = if self.utf8 {
            String::from_utf8(pattern_bytes).map_err(|_| NameError::Encoding)
        } else {
            names::decode_utf7(&pattern_bytes)
        };
        let (reference, pattern) = match (reference, pattern) {
            (Ok(r), Ok(p)) => (r, p),
            (Err(e), _) | (_, Err(e)) => {
                self.name_error(&tag, &e);
                return None;
            }
        };
        if pattern.is_empty() {
            self.line(&format!("* {verb} (\\Noselect) \"/\" \"\""));
            self.line(&format!("{tag} OK {verb} completed"));
            return None;
        }
        let full = format!("{reference}{pattern}");
        let existing: BTreeSet<String> = ctx.mailboxes().into_iter().collect();
        let mut all: BTreeSet<String> = existing.clone();
        for name in &existing {
            let mut at = 0;
            while let Some(p) = name[at..].find(names::SEPARATOR) {
                all.insert(name[..at + p].to_string());
                at += p + 1;
            }
        }
        let candidates: Vec<String> = if lsub {
            ctx.store
                .shard()
                .account(&ctx.account)
                .map(|a| a.subscriptions.iter().cloned().collect())
                .unwrap_or_default()
        } else {
            all.iter().cloned().collect()
        };
        for name in candidates {
            if !names::matches(&full, &name) {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            if !existing.contains(&name) {
                attrs.push("Noselect");
            }
            let prefix = format!("{name}/");
            let children = all
                .range(prefix.clone()..)
                .next()
                .is_some_and(|n| n.starts_with(&prefix));
            attrs.push(if children {
                "HasChildren"
            } else {
                "HasNoChildren"
            });
            if let Some((_, usage)) = DEFAULT_MAILBOXES
                .iter()
                .find(|(n, u)| *n == name && !u.is_empty())
            {
                attrs.push(usage);
            }
            let items: Vec<FlagNameAttribute<'_>> = attrs
                .iter()
                .filter_map(|a| Atom::try_from(*a).ok().map(FlagNameAttribute::from))
                .collect();
            let Ok(mailbox) = Mailbox::try_from(self.wire_name(&name)) else {
                continue;
            };
            let delimiter = QuotedChar::try_from('/').ok();
            if lsub {
                self.data(Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                });
            } else {
                self.data(Data::List {
                    items,
                    delimiter,
                    mailbox,
                });
            }
        }
        self.line(&format!("{tag} OK {verb} completed"));
        None
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
        from: &Mailbox<'_>,
        to: &Mailbox<'_>,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let (from, to) = match (self.name_of(from), self.checked_name(to)) {
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
        let Some(m) = ctx.mailbox(&name) else {
            return self.line(&format!("{tag} NO [NONEXISTENT] No such mailbox"));
        };
        let count = |f: &dyn Fn(&store::Message) -> bool| {
            m.messages.values().filter(|x| f(x)).count() as u32
        };
        let has =
            |x: &store::Message, flag: &str| x.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
        let mut out = Vec::new();
        for item in items {
            out.push(match item {
                StatusDataItemName::Messages => StatusDataItem::Messages(m.messages.len() as u32),
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(m.uid_next)),
                StatusDataItemName::UidValidity => StatusDataItem::UidValidity(nz(m.uidvalidity)),
                StatusDataItemName::Unseen => StatusDataItem::Unseen(count(&|x| !has(x, "\\Seen"))),
                StatusDataItemName::Deleted => {
                    StatusDataItem::Deleted(count(&|x| has(x, "\\Deleted")))
                }
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
                StatusDataItemName::HighestModSeq => {
                    StatusDataItem::HighestModSeq(m.highest_modseq)
                }
            });
        }
        if let Ok(mailbox) = Mailbox::try_from(self.wire_name(&name)) {
            self.data(Data::Status {
                mailbox,
                items: out.into(),
            });
        }
        self.line(&format!("{tag} OK STATUS completed"));
    }
}

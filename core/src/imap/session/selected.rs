//! Commands on the selected mailbox, and the view kept in step with the durable index.

use super::*;

impl Session {
    pub(super) fn select(
        &mut self,
        ctx: &mut Ctx<'_>,
        mailbox: &Mailbox<'_>,
        params: &[SelectParameter],
        read_only: bool,
    ) {
        let tag = ctx.tag.clone();
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        // SELECT and EXAMINE, even failing ones, forget `$` (RFC 5182 §2.1).
        self.saved.clear();
        if self.selected.take().is_some() && self.qresync {
            self.line("* OK [CLOSED] Previous mailbox closed");
        }
        let name = match self.name_of(mailbox) {
            Ok(n) => n,
            Err(e) => return self.name_error(&tag, &e),
        };
        let mut qresync = None;
        for p in params {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !self.qresync {
                        return self.line(&format!("{tag} BAD QRESYNC is not enabled"));
                    }
                    qresync = Some((
                        uid_validity.get(),
                        mod_sequence_value.get(),
                        known_uids.clone(),
                    ));
                }
            }
        }
        let Some(m) = ctx.mailbox(&name) else {
            return self.line(&format!("{tag} NO [NONEXISTENT] No such mailbox"));
        };
        let mut keywords: BTreeSet<&str> = BTreeSet::new();
        for msg in m.messages.values() {
            keywords.extend(
                msg.flags
                    .iter()
                    .filter(|f| !f.starts_with('\\'))
                    .map(String::as_str),
            );
        }
        let mut flags = SYSTEM_FLAGS.to_string();
        for k in &keywords {
            flags.push(' ');
            flags.push_str(k);
        }
        let uids: Vec<Uid> = m.messages.keys().copied().collect();
        let first_unseen = m
            .messages
            .values()
            .position(|x| !x.flags.iter().any(|f| f == "\\Seen"));
        // IMAP4rev2 has neither RECENT nor UNSEEN (RFC 9051 Appendix E).
        let mut lines = vec![format!("* {} EXISTS", uids.len())];
        if !self.rev2 {
            lines.push("* 0 RECENT".to_string());
        }
        lines.push(format!("* FLAGS ({flags})"));
        if read_only {
            lines.push("* OK [PERMANENTFLAGS ()] Read-only mailbox".to_string());
        } else {
            lines.push(format!(
                "* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)] Flags permitted"
            ));
        }
        if let (false, Some(p)) = (self.rev2, first_unseen) {
            lines.push(format!("* OK [UNSEEN {}] First unseen", p + 1));
        }
        lines.push(format!("* OK [UIDVALIDITY {}] UIDs valid", m.uidvalidity));
        lines.push(format!("* OK [UIDNEXT {}] Predicted next UID", m.uid_next));
        lines.push(format!("* OK [HIGHESTMODSEQ {}] Highest", m.highest_modseq));
        if let Some((_, since, known)) = qresync.filter(|q| q.0 == m.uidvalidity) {
            let gone = vanished(m, known.as_ref(), u32::MAX);
            if !gone.is_empty() {
                lines.push(format!("* VANISHED (EARLIER) {gone}"));
            }
            for (i, msg) in m.messages.values().enumerate() {
                if msg.modseq > since {
                    lines.push(format!(
                        "* {} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                        i + 1,
                        msg.uid,
                        msg.flags.join(" "),
                        msg.modseq
                    ));
                }
            }
        }
        let known = m.messages.values().map(|x| (x.uid, x.modseq)).collect();
        self.selected = Some(Selected {
            name,
            uidvalidity: m.uidvalidity,
            read_only,
            uids,
            known,
            synced_modseq: m.highest_modseq,
        });
        for l in lines {
            self.line(&l);
        }
        if self.rev2 {
            // The mailbox's LIST response (RFC 9051 §6.3.2), with OLDNAME when the
            // client named it otherwise than treehouse does.
            let name = self.selected.as_ref().map(|s| s.name.clone());
            if let Some(name) = name {
                self.selected_list_line(ctx, mailbox, &name);
            }
        }
        let access = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.line(&format!("{tag} OK [{access}] {verb} completed"));
    }

    pub(super) fn append(
        &mut self,
        ctx: &mut Ctx<'_>,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<i64>,
        body: Vec<u8>,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let name = self.name_or_reply(&tag, mailbox)?;
        if ctx.mailbox(&name).is_none() {
            self.line(&format!("{tag} NO [TRYCREATE] No such mailbox"));
            return None;
        }
        let internal_date = date.unwrap_or_else(|| ctx.store.now_unix_s());
        let meta = crate::message::parse(&body).encode();
        let op = Op::Append {
            account: ctx.account.clone(),
            mailbox: name.clone(),
            flags: flags.iter().map(ToString::to_string).collect(),
            internal_date,
            meta,
            body,
        };
        self.apply(tag, After::Append { mailbox: name }, vec![op])
    }

    pub(super) fn selected_command(
        &mut self,
        ctx: &mut Ctx<'_>,
        body: CommandBody<'static>,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let Some(sel) = self.selected.as_ref() else {
            self.line(&format!("{tag} BAD No mailbox selected"));
            return None;
        };
        let read_only = sel.read_only;
        let sel_name = sel.name.clone();
        match body {
            CommandBody::Close | CommandBody::Unselect => {
                let close = matches!(body, CommandBody::Close);
                let deleted = self.deleted_uids(ctx, None);
                if close && !read_only && !deleted.is_empty() {
                    let op = Op::Expunge {
                        account: ctx.account.clone(),
                        mailbox: sel_name,
                        uids: deleted,
                    };
                    return self.apply(tag, After::Close, vec![op]);
                }
                self.selected = None;
                self.saved.clear();
                self.line(&format!(
                    "{tag} OK {} completed",
                    if close { "CLOSE" } else { "UNSELECT" }
                ));
                None
            }
            CommandBody::Expunge | CommandBody::ExpungeUid { .. } => {
                let uid_cmd = matches!(body, CommandBody::ExpungeUid { .. });
                if read_only {
                    self.line(&format!("{tag} NO [READ-ONLY] Mailbox is read-only"));
                    return None;
                }
                let only = match &body {
                    CommandBody::ExpungeUid { sequence_set } => Some(sequence_set),
                    _ => None,
                };
                let deleted = self.deleted_uids(ctx, only);
                if deleted.is_empty() {
                    self.sync(ctx.store, true, uid_cmd);
                    self.line(&format!("{tag} OK EXPUNGE completed"));
                    return None;
                }
                let op = Op::Expunge {
                    account: ctx.account.clone(),
                    mailbox: sel_name,
                    uids: deleted,
                };
                self.apply(tag, After::Expunge { uid_cmd }, vec![op])
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                if read_only {
                    self.line(&format!("{tag} NO [READ-ONLY] Mailbox is read-only"));
                    return None;
                }
                let unchanged_since = modifiers
                    .iter()
                    .map(|m| match m {
                        imap_codec::imap_types::command::StoreModifier::UnchangedSince(v) => *v,
                    })
                    .next();
                if unchanged_since.is_some() {
                    self.condstore = true;
                }
                let targets = match self.resolve(&sequence_set, uid) {
                    Ok(t) => t,
                    Err(()) => {
                        self.line(&format!("{tag} BAD Invalid message sequence number"));
                        return None;
                    }
                };
                let flags: Vec<String> = flags.iter().map(ToString::to_string).collect();
                let Some(m) = ctx.mailbox(&sel_name) else {
                    self.line(&format!("{tag} NO [NONEXISTENT] Mailbox was deleted"));
                    return None;
                };
                let mut ops = Vec::new();
                let mut uids = Vec::new();
                let mut modified = Vec::new();
                for (seq, msg_uid) in targets {
                    let Some(msg) = m.messages.get(&msg_uid) else {
                        continue;
                    };
                    if unchanged_since.is_some_and(|u| msg.modseq > u) {
                        modified.push(if uid { msg_uid } else { seq });
                        continue;
                    }
                    let new = new_flags(&msg.flags, &flags, kind);
                    uids.push(msg_uid);
                    if new != msg.flags || unchanged_since.is_some() {
                        ops.push(Op::SetFlags {
                            account: ctx.account.clone(),
                            mailbox: sel_name.clone(),
                            uid: msg_uid,
                            flags: new,
                        });
                    }
                }
                let then = After::Store {
                    uids,
                    // With CONDSTORE, .SILENT still reports the new MODSEQ (RFC 7162 §3.1.3).
                    silent: response == StoreResponse::Silent && !self.condstore,
                    uid_cmd: uid,
                    modified,
                };
                if ops.is_empty() {
                    return self.finish(tag, then, Vec::new(), ctx.store);
                }
                self.apply(tag, then, ops)
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(ctx, &sequence_set, &mailbox, uid, false),
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                if read_only {
                    self.line(&format!("{tag} NO [READ-ONLY] Mailbox is read-only"));
                    return None;
                }
                self.copy(ctx, &sequence_set, &mailbox, uid, true)
            }
            body @ CommandBody::Fetch { .. } => self.fetch(ctx, body),
            CommandBody::Search {
                charset,
                criteria,
                uid,
                return_options,
            } => {
                let charset = charset.as_ref().map(|c| c.as_ref());
                self.search(
                    ctx,
                    charset,
                    criteria.as_ref(),
                    uid,
                    return_options.as_deref(),
                );
                None
            }
            _ => {
                self.line(&format!("{tag} BAD Command is not supported"));
                None
            }
        }
    }
}

/// The flags a STORE leaves on a message.
pub(super) fn new_flags(current: &[String], given: &[String], kind: StoreType) -> Vec<String> {
    let same = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
    let mut out: Vec<String> = match kind {
        StoreType::Replace => given.to_vec(),
        StoreType::Add => {
            let mut v = current.to_vec();
            for f in given {
                if !v.iter().any(|c| same(c, f)) {
                    v.push(f.clone());
                }
            }
            v
        }
        StoreType::Remove => current
            .iter()
            .filter(|c| !given.iter().any(|f| same(c, f)))
            .cloned()
            .collect(),
    };
    out.retain(|f| !f.eq_ignore_ascii_case("\\Recent"));
    out.sort();
    out.dedup();
    out
}

pub(super) fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// Whether `value` is in `set`, with `*` standing for `largest` and `$` matching when
/// `saved`.
pub(super) fn contains(set: &SequenceSet, value: u32, largest: u32, saved: bool) -> bool {
    let resolve = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|seq| match seq {
        Sequence::Single(s) => resolve(s) == value,
        Sequence::Range(a, b) => {
            let (a, b) = (resolve(a), resolve(b));
            (a.min(b)..=a.max(b)).contains(&value)
        }
        Sequence::LastCommand => saved,
    })
}

/// A UID set in IMAP syntax (`1:3,7`), from ascending UIDs.
pub(super) fn uid_set(uids: &[Uid]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        i += 1;
    }
    out
}

pub(super) fn has_flag(m: &store::Message, flag: &str) -> bool {
    m.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

impl Session {
    /// Whether `uid` is in the saved search result (`$`, RFC 5182).
    pub(super) fn is_saved(&self, uid: Uid) -> bool {
        self.saved.binary_search(&uid).is_ok()
    }

    /// Messages of the view the set names: (sequence number, UID); Err for a bad number.
    pub(super) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, Uid)>, ()> {
        let Some(sel) = &self.selected else {
            return Ok(Vec::new());
        };
        let len = sel.uids.len() as u32;
        if uid {
            let largest = sel.uids.last().copied().unwrap_or(0);
            return Ok(sel
                .uids
                .iter()
                .enumerate()
                .filter(|(_, u)| contains(set, **u, largest, self.is_saved(**u)))
                .map(|(i, u)| (i as u32 + 1, *u))
                .collect());
        }
        for seq in set.0.as_ref() {
            let values = match seq {
                Sequence::Single(s) => vec![s],
                Sequence::Range(a, b) => vec![a, b],
                Sequence::LastCommand => vec![],
            };
            for v in values {
                if let SeqOrUid::Value(n) = v
                    && n.get() > len
                {
                    return Err(());
                }
            }
        }
        Ok(sel
            .uids
            .iter()
            .enumerate()
            .filter(|(i, u)| contains(set, *i as u32 + 1, len, self.is_saved(**u)))
            .map(|(i, u)| (i as u32 + 1, *u))
            .collect())
    }

    /// UIDs of the view's messages marked \Deleted in the index (within `only` if given).
    pub(super) fn deleted_uids(&self, ctx: &Ctx<'_>, only: Option<&SequenceSet>) -> Vec<Uid> {
        let Some(sel) = &self.selected else {
            return Vec::new();
        };
        let Some(m) = ctx.mailbox(&sel.name) else {
            return Vec::new();
        };
        let largest = sel.uids.last().copied().unwrap_or(0);
        m.messages
            .values()
            .filter(|x| has_flag(x, "\\Deleted"))
            .filter(|x| sel.known.contains_key(&x.uid))
            .filter(|x| only.is_none_or(|s| contains(s, x.uid, largest, self.is_saved(x.uid))))
            .map(|x| x.uid)
            .collect()
    }

    pub(super) fn fetch_flags_line(&self, seq: u32, m: &store::Message, with_uid: bool) -> String {
        let mut line = format!("* {seq} FETCH (");
        if with_uid {
            let _ = write!(line, "UID {} ", m.uid);
        }
        let _ = write!(line, "FLAGS ({})", m.flags.join(" "));
        if self.condstore {
            let _ = write!(line, " MODSEQ ({})", m.modseq);
        }
        line.push(')');
        line
    }

    /// Brings the client's view up to date with the durable index: flag changes, then
    /// (where `expunge_ok`) expunges, then new messages.
    pub(super) fn sync(&mut self, store: &dyn Mailstore, expunge_ok: bool, with_uid: bool) {
        let (Some(account), Some(sel)) = (self.account.as_deref(), self.selected.as_ref()) else {
            return;
        };
        let mailbox = store
            .shard()
            .mailbox(account, &sel.name)
            .filter(|m| m.uidvalidity == sel.uidvalidity);
        // Every change to a mailbox raises its HIGHESTMODSEQ: unchanged means nothing to say.
        if mailbox.is_some_and(|m| m.highest_modseq == sel.synced_modseq) {
            return;
        }
        let mut lines = Vec::new();
        let mut seen_modseq = Vec::new();
        if let Some(m) = mailbox {
            for (i, uid) in sel.uids.iter().enumerate() {
                if let Some(msg) = m.messages.get(uid)
                    && sel.known.get(uid).is_some_and(|k| msg.modseq > *k)
                {
                    lines.push(self.fetch_flags_line(i as u32 + 1, msg, with_uid || self.qresync));
                    seen_modseq.push((*uid, msg.modseq));
                }
            }
        }
        let qresync = self.qresync;
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        for (uid, modseq) in seen_modseq {
            sel.known.insert(uid, modseq);
        }
        if expunge_ok {
            let gone: Vec<(usize, Uid)> = sel
                .uids
                .iter()
                .enumerate()
                .filter(|(_, u)| mailbox.is_none_or(|m| !m.messages.contains_key(*u)))
                .map(|(i, u)| (i, *u))
                .collect();
            if !gone.is_empty() {
                if qresync {
                    let uids: Vec<Uid> = gone.iter().map(|g| g.1).collect();
                    lines.push(format!("* VANISHED {}", uid_set(&uids)));
                } else {
                    for (i, _) in gone.iter().rev() {
                        lines.push(format!("* {} EXPUNGE", i + 1));
                    }
                }
                for (_, uid) in &gone {
                    sel.known.remove(uid);
                }
                sel.uids.retain(|u| sel.known.contains_key(u));
            }
        }
        if let Some(m) = mailbox {
            let last = sel.uids.last().copied().unwrap_or(0);
            let before = sel.uids.len();
            for msg in m.messages.range(last.saturating_add(1)..).map(|(_, x)| x) {
                sel.uids.push(msg.uid);
                sel.known.insert(msg.uid, msg.modseq);
            }
            if sel.uids.len() != before {
                lines.push(format!("* {} EXISTS", sel.uids.len()));
            }
            if expunge_ok {
                sel.synced_modseq = m.highest_modseq;
            }
        }
        for l in lines {
            self.line(&l);
        }
    }

    pub(super) fn copy(
        &mut self,
        ctx: &mut Ctx<'_>,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let target = self.name_or_reply(&tag, mailbox)?;
        if ctx.mailbox(&target).is_none() {
            self.line(&format!("{tag} NO [TRYCREATE] No such mailbox"));
            return None;
        }
        let targets = match self.resolve(set, uid) {
            Ok(t) => t,
            Err(()) => {
                self.line(&format!("{tag} BAD Invalid message sequence number"));
                return None;
            }
        };
        let source = self.selected.as_ref().map(|s| s.name.clone())?;
        let messages: Vec<store::Message> = {
            let Some(m) = ctx.mailbox(&source) else {
                self.line(&format!("{tag} NO [NONEXISTENT] Mailbox was deleted"));
                return None;
            };
            targets
                .iter()
                .filter_map(|(_, u)| m.messages.get(u).cloned())
                .collect()
        };
        if messages.is_empty() {
            self.sync(ctx.store, uid, uid);
            self.line(&format!("{tag} OK No messages"));
            return None;
        }
        if messages.iter().map(|m| m.size_bytes).sum::<u64>() > self.cfg.copy_max_bytes {
            let limit = self.cfg.copy_max_bytes;
            self.line(&format!(
                "{tag} NO [LIMIT] More than {limit} bytes at once; copy fewer messages"
            ));
            return None;
        }
        let mut ops = Vec::new();
        let mut sources = Vec::new();
        for m in messages {
            let body = match ctx.store.read_body(&source, m.uid) {
                Ok(b) => b,
                Err(e) => {
                    self.line(&format!("{tag} NO [SERVERBUG] {e}"));
                    return None;
                }
            };
            sources.push(m.uid);
            ops.push(Op::Append {
                account: ctx.account.clone(),
                mailbox: target.clone(),
                flags: m.flags.clone(),
                internal_date: m.internal_date,
                meta: m.meta.to_vec(),
                body,
            });
        }
        let then = After::Copy {
            target,
            sources,
            is_move,
            uid_cmd: uid,
        };
        self.apply(tag, then, ops)
    }

    pub(super) fn finish(
        &mut self,
        tag: String,
        then: After,
        results: Vec<Applied>,
        store: &mut dyn Mailstore,
    ) -> Option<Action> {
        let failure = results.iter().find_map(|r| r.as_ref().err()).cloned();
        let account = self.account.clone().unwrap_or_default();
        match then {
            After::Plain { done } => {
                // Untagged updates go before the tagged completion.
                self.sync(store, true, false);
                let held = mem::take(&mut self.held);
                match failure {
                    None => {
                        self.out.extend_from_slice(&held);
                        self.line(&format!("{tag} OK {done}"))
                    }
                    Some(e) => self.line(&format!("{tag} NO {}", one_line(&e))),
                }
            }
            After::RenameInbox { uids } => {
                if let Some(e) = failure {
                    self.held.clear();
                    self.line(&format!("{tag} NO {}", one_line(&e)));
                } else if uids.is_empty() {
                    let held = mem::take(&mut self.held);
                    self.out.extend_from_slice(&held);
                    self.line(&format!("{tag} OK RENAME completed"));
                } else {
                    let op = Op::Expunge {
                        account,
                        mailbox: store::INBOX.to_string(),
                        uids,
                    };
                    return self.apply(
                        tag,
                        After::Plain {
                            done: "RENAME completed",
                        },
                        vec![op],
                    );
                }
            }
            After::Append { mailbox } => {
                if let Some(e) = failure {
                    self.line(&format!("{tag} NO {}", one_line(&e)));
                    return None;
                }
                self.sync(store, false, false);
                let uidvalidity = store
                    .shard()
                    .mailbox(&account, &mailbox)
                    .map_or(0, |m| m.uidvalidity);
                match results
                    .first()
                    .and_then(|r| r.as_ref().ok().copied().flatten())
                {
                    Some(uid) => self.line(&format!(
                        "{tag} OK [APPENDUID {uidvalidity} {uid}] APPEND completed"
                    )),
                    None => self.line(&format!("{tag} OK APPEND completed")),
                }
            }
            After::Store {
                uids,
                silent,
                uid_cmd,
                modified,
            } => {
                self.report_flags(store, &uids, silent, uid_cmd);
                self.sync(store, uid_cmd, uid_cmd);
                match failure {
                    Some(e) => self.line(&format!("{tag} NO {}", one_line(&e))),
                    None if !modified.is_empty() => {
                        let mut modified = modified;
                        modified.sort_unstable();
                        self.line(&format!(
                            "{tag} OK [MODIFIED {}] Conditional STORE failed",
                            uid_set(&modified)
                        ));
                    }
                    None => self.line(&format!("{tag} OK STORE completed")),
                }
            }
            After::Expunge { uid_cmd } => {
                self.sync(store, true, uid_cmd);
                match failure {
                    Some(e) => self.line(&format!("{tag} NO {}", one_line(&e))),
                    None => self.line(&format!("{tag} OK EXPUNGE completed")),
                }
            }
            After::Close => {
                self.selected = None;
                self.saved.clear();
                match failure {
                    Some(e) => self.line(&format!("{tag} NO {}", one_line(&e))),
                    None => self.line(&format!("{tag} OK CLOSE completed")),
                }
            }
            After::Copy {
                target,
                sources,
                is_move,
                uid_cmd,
            } => {
                if let Some(e) = failure {
                    self.sync(store, uid_cmd, uid_cmd);
                    self.line(&format!("{tag} NO {}", one_line(&e)));
                    return None;
                }
                let new: Vec<Uid> = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok().copied().flatten())
                    .collect();
                let uidvalidity = store
                    .shard()
                    .mailbox(&account, &target)
                    .map_or(0, |m| m.uidvalidity);
                let old = sources;
                let copyuid = if new.len() == old.len() {
                    format!(
                        "[COPYUID {uidvalidity} {} {}] ",
                        uid_list(&old),
                        uid_list(&new)
                    )
                } else {
                    String::new()
                };
                if is_move {
                    let Some(source) = self.selected.as_ref().map(|s| s.name.clone()) else {
                        self.line(&format!("{tag} OK {copyuid}MOVE completed"));
                        return None;
                    };
                    let op = Op::Expunge {
                        account,
                        mailbox: source,
                        uids: old,
                    };
                    return self.apply(tag, After::MoveExpunged { copyuid, uid_cmd }, vec![op]);
                }
                self.sync(store, uid_cmd, uid_cmd);
                self.line(&format!("{tag} OK {copyuid}COPY completed"));
            }
            After::MoveExpunged { copyuid, uid_cmd } => {
                if !copyuid.is_empty() {
                    self.line(&format!("* OK {copyuid}Moved"));
                }
                self.sync(store, true, uid_cmd);
                match failure {
                    Some(e) => self.line(&format!("{tag} NO {}", one_line(&e))),
                    None => self.line(&format!("{tag} OK MOVE completed")),
                }
            }
            After::Fetch { command } => {
                if let Some(e) = failure {
                    self.line(&format!("{tag} NO {}", one_line(&e)));
                    return None;
                }
                self.fetch_now(&tag, store, command.body, true);
            }
        }
        None
    }

    /// Untagged FETCH FLAGS for messages this session changed.
    pub(super) fn report_flags(
        &mut self,
        store: &dyn Mailstore,
        uids: &[Uid],
        silent: bool,
        uid_cmd: bool,
    ) {
        let (Some(account), Some(sel)) = (self.account.clone(), self.selected.as_ref()) else {
            return;
        };
        let Some(m) = store.shard().mailbox(&account, &sel.name) else {
            return;
        };
        let mut lines = Vec::new();
        let mut seen = Vec::new();
        for (i, uid) in sel.uids.iter().enumerate() {
            if !uids.contains(uid) {
                continue;
            }
            if let Some(msg) = m.messages.get(uid) {
                if !silent {
                    lines.push(self.fetch_flags_line(i as u32 + 1, msg, uid_cmd));
                }
                seen.push((*uid, msg.modseq));
            }
        }
        if let Some(sel) = self.selected.as_mut() {
            for (uid, modseq) in seen {
                sel.known.insert(uid, modseq);
            }
        }
        for l in lines {
            self.line(&l);
        }
    }
}

pub(super) fn uid_list(uids: &[Uid]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    if sorted == uids {
        uid_set(uids)
    } else {
        uids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A store error as one line of response text.
pub(super) fn one_line(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if t.is_empty() {
        "Failed".to_string()
    } else {
        t
    }
}

/// The UIDs below UIDNEXT that `m` no longer holds (within `set`, if given, with `*` as
/// `largest`), as an IMAP UID set; computed over ranges, never UID by UID.
pub(super) fn vanished(m: &store::Mailbox, set: Option<&SequenceSet>, largest: u32) -> String {
    let mut gaps = Vec::new();
    let mut next = 1u32;
    for &uid in m.messages.keys() {
        if uid > next {
            gaps.push((next, uid - 1));
        }
        next = uid.saturating_add(1);
    }
    if m.uid_next > next {
        gaps.push((next, m.uid_next - 1));
    }
    let wanted: Vec<(u32, u32)> = match set {
        None => vec![(1, u32::MAX)],
        Some(set) => {
            let resolve = |s: &SeqOrUid| match s {
                SeqOrUid::Value(v) => v.get(),
                SeqOrUid::Asterisk => largest,
            };
            set.0
                .as_ref()
                .iter()
                .filter_map(|seq| match seq {
                    Sequence::Single(s) => Some((resolve(s), resolve(s))),
                    Sequence::Range(a, b) => {
                        let (a, b) = (resolve(a), resolve(b));
                        Some((a.min(b), a.max(b)))
                    }
                    // Saved UIDs are all in the view, so none of them vanished.
                    Sequence::LastCommand => None,
                })
                .collect()
        }
    };
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for (g1, g2) in gaps {
        for &(w1, w2) in &wanted {
            let (lo, hi) = (g1.max(w1), g2.min(w2));
            if lo <= hi {
                ranges.push((lo, hi));
            }
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let parts: Vec<String> = merged
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}:{hi}")
            }
        })
        .collect();
    parts.join(",")
}

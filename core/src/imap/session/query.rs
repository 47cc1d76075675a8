//! FETCH, and SEARCH with its ESEARCH form (RFC 4731), on the selected mailbox.

use std::num::NonZeroU64;

use crate::message::MessageMeta;

use super::selected::{has_flag, new_flags, one_line, uid_set, vanished};
use super::*;

impl Session {
    pub(super) fn fetch(
        &mut self,
        ctx: &mut Ctx<'_>,
        body: CommandBody<'static>,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        let CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            ..
        } = &body
        else {
            return None;
        };
        let items = fetch_items(macro_or_item_names, *uid);
        let read_only = self.selected.as_ref().is_none_or(|s| s.read_only);
        if !read_only && fetch::sets_seen(&items) {
            let targets = match self.resolve(sequence_set, *uid) {
                Ok(t) => t,
                Err(()) => {
                    self.line(&format!("{tag} BAD Invalid message sequence number"));
                    return None;
                }
            };
            let name = self
                .selected
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let mut ops = Vec::new();
            if let Some(m) = ctx.mailbox(&name) {
                for (_, u) in targets {
                    if let Some(msg) = m.messages.get(&u)
                        && !has_flag(msg, "\\Seen")
                    {
                        ops.push(Op::SetFlags {
                            account: ctx.account.clone(),
                            mailbox: name.clone(),
                            uid: u,
                            flags: new_flags(&msg.flags, &["\\Seen".to_string()], StoreType::Add),
                        });
                    }
                }
            }
            if !ops.is_empty() {
                let command = Box::new(Command {
                    tag: Tag::try_from(tag.clone()).ok()?,
                    body,
                });
                return self.apply(tag, After::Fetch { command }, ops);
            }
        }
        self.fetch_now(&tag, ctx.store, body, false);
        None
    }

    pub(super) fn fetch_now(
        &mut self,
        tag: &str,
        store: &mut dyn Mailstore,
        body: CommandBody<'static>,
        seen_set: bool,
    ) {
        let CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } = &body
        else {
            return;
        };
        let mut items = fetch_items(macro_or_item_names, *uid);
        let changed_since = modifiers.iter().find_map(|m| match m {
            FetchModifier::ChangedSince(v) => Some(v.get()),
            FetchModifier::Vanished => None,
        });
        let wants_vanished = modifiers
            .iter()
            .any(|m| matches!(m, FetchModifier::Vanished));
        if wants_vanished && (!self.qresync || !*uid || changed_since.is_none()) {
            return self.line(&format!(
                "{tag} BAD VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE"
            ));
        }
        if changed_since.is_some() && !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
        if items.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        if self.condstore
            && items.contains(&MessageDataItemName::Flags)
            && !items.contains(&MessageDataItemName::ModSeq)
        {
            items.push(MessageDataItemName::ModSeq);
        }
        if seen_set && !items.contains(&MessageDataItemName::Flags) {
            items.push(MessageDataItemName::Flags);
        }
        let targets = match self.resolve(sequence_set, *uid) {
            Ok(t) => t,
            Err(()) => return self.line(&format!("{tag} BAD Invalid message sequence number")),
        };
        let (Some(account), Some(name)) = (
            self.account.clone(),
            self.selected.as_ref().map(|s| s.name.clone()),
        ) else {
            return;
        };
        if wants_vanished {
            let largest = self
                .selected
                .as_ref()
                .and_then(|s| s.uids.last().copied())
                .unwrap_or(0);
            if let Some(m) = store.shard().mailbox(&account, &name) {
                let gone = vanished(m, Some(sequence_set), largest);
                if !gone.is_empty() {
                    self.line(&format!("* VANISHED (EARLIER) {gone}"));
                }
            }
        }
        let needs_body = fetch::needs_body(&items);
        // BODY[]<partial> alone reads only its bytes, however large the message.
        let window = fetch::body_window(&items);
        let with_flags = items.contains(&MessageDataItemName::Flags);
        let mut error = None;
        let mut expunged = false;
        for (seq, u) in targets {
            let Some(msg) = store
                .shard()
                .mailbox(&account, &name)
                .and_then(|m| m.messages.get(&u))
                .cloned()
            else {
                expunged = true;
                continue;
            };
            if changed_since.is_some_and(|c| msg.modseq <= c) {
                continue;
            }
            let raw = match (needs_body, window) {
                (true, Some((from, to))) => store.read_body_range(&name, u, from, to - from),
                (true, None) => store.read_body(&name, u),
                (false, _) => Ok(Vec::new()),
            };
            let raw = match raw {
                Ok(b) => b,
                Err(e) => {
                    error = Some(format!("NO [SERVERBUG] {}", one_line(&e.to_string())));
                    break;
                }
            };
            let rendered = match (needs_body, window) {
                (true, Some((from, _))) => fetch::render_window(&items, &msg, from, &raw),
                (true, None) => fetch::render(&items, nz(seq), &msg, Some(&raw)),
                (false, _) => fetch::render(&items, nz(seq), &msg, None),
            };
            match rendered {
                Ok(rendered) => {
                    if let Ok(items) = Vec1::try_from(rendered) {
                        self.data(Data::Fetch {
                            seq: nz(seq),
                            items,
                        });
                    }
                    if with_flags && let Some(sel) = self.selected.as_mut() {
                        sel.known.insert(u, msg.modseq);
                    }
                }
                Err(fetch::FetchError::UnknownCte(cte)) => {
                    error = Some(format!(
                        "NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding {}",
                        one_line(&cte)
                    ));
                    break;
                }
                Err(e) => {
                    error = Some(format!("NO {}", one_line(&e.to_string())));
                    break;
                }
            }
        }
        self.sync(store, *uid, *uid);
        match error {
            Some(e) => self.line(&format!("{tag} {e}")),
            None if expunged => self.line(&format!(
                "{tag} OK [EXPUNGEISSUED] Some messages were expunged meanwhile"
            )),
            None => self.line(&format!("{tag} OK FETCH completed")),
        }
    }
}

/// The bytes of `msg` a SEARCH needs, from its first byte on: the top-level header
/// alone (with the decoded metadata that told where it ends) when that is all the keys
/// read, else the whole message.
fn read_for_search(
    store: &mut dyn Mailstore,
    mailbox: &str,
    msg: &store::Message,
    needs: search::Needs,
) -> Result<(Vec<u8>, Option<MessageMeta>), store::StoreError> {
    if needs == search::Needs::Header
        && let Ok(meta) = MessageMeta::decode(&msg.meta)
    {
        let header = store.read_body_range(mailbox, msg.uid, 0, meta.body.offsets.body_start)?;
        return Ok((header, Some(meta)));
    }
    Ok((store.read_body(mailbox, msg.uid)?, None))
}

/// The item names a FETCH asks for; UID FETCH always includes UID.
pub(super) fn fetch_items(
    names: &MacroOrMessageDataItemNames<'static>,
    uid: bool,
) -> Vec<MessageDataItemName<'static>> {
    let mut items: Vec<MessageDataItemName<'static>> = match names {
        MacroOrMessageDataItemNames::Macro(m) => m
            .expand()
            .into_iter()
            .map(IntoStatic::into_static)
            .collect(),
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v.clone(),
    };
    if uid && !items.contains(&MessageDataItemName::Uid) {
        items.insert(0, MessageDataItemName::Uid);
    }
    items
}

/// Whether a search key compares MODSEQ (so the response carries the highest one).
pub(super) fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(key) => uses_modseq(key),
        SearchKey::Or(left, right) => uses_modseq(left) || uses_modseq(right),
        _ => false,
    }
}

/// Whether `key` uses RECENT, NEW or OLD, which IMAP4rev2 removed (RFC 9051 Appendix E).
fn uses_recent(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::Recent | SearchKey::New | SearchKey::Old => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_recent),
        SearchKey::Not(key) => uses_recent(key),
        SearchKey::Or(left, right) => uses_recent(left) || uses_recent(right),
        _ => false,
    }
}

/// What `SEARCH RETURN (... SAVE ...)` saves from the matching UIDs (ascending): only
/// MIN and/or MAX when they come without ALL or COUNT, else all (RFC 5182 §2.4).
fn saved_result(options: &[SearchReturnOption], hit_uids: Vec<Uid>) -> Vec<Uid> {
    let has = |o: SearchReturnOption| options.contains(&o);
    if has(SearchReturnOption::All) || has(SearchReturnOption::Count) {
        return hit_uids;
    }
    let (min, max) = (has(SearchReturnOption::Min), has(SearchReturnOption::Max));
    if !min && !max {
        return hit_uids;
    }
    let mut out = Vec::new();
    if let (true, Some(first)) = (min, hit_uids.first()) {
        out.push(*first);
    }
    if let (true, Some(last)) = (max, hit_uids.last())
        && out.last() != Some(last)
    {
        out.push(*last);
    }
    out
}

impl Session {
    /// SEARCH and UID SEARCH; with `RETURN (...)` the answer is ESEARCH (RFC 4731).
    pub(super) fn search(
        &mut self,
        ctx: &mut Ctx<'_>,
        charset: Option<&str>,
        criteria: &[SearchKey<'_>],
        uid: bool,
        return_options: Option<&[SearchReturnOption]>,
    ) {
        let tag = ctx.tag.clone();
        let save = return_options.is_some_and(|r| r.contains(&SearchReturnOption::Save));
        if let Some(c) = charset
            && !c.eq_ignore_ascii_case("UTF-8")
            && !c.eq_ignore_ascii_case("US-ASCII")
        {
            self.search_failed(save);
            return self.line(&format!(
                "{tag} NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"
            ));
        }
        if self.rev2 && criteria.iter().any(uses_recent) {
            self.search_failed(save);
            return self.line(&format!(
                "{tag} BAD RECENT, NEW and OLD are not in IMAP4rev2"
            ));
        }
        let with_modseq = criteria.iter().any(uses_modseq);
        if with_modseq {
            self.condstore = true;
        }
        let needs = search::needs_all(criteria);
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        let name = sel.name.clone();
        let view: Vec<Uid> = sel.uids.clone();
        let max_uid = view.last().copied().unwrap_or(0);
        // Matching numbers (sequence numbers or UIDs), ascending, with their MODSEQ.
        let mut hits: Vec<(u32, ModSeq)> = Vec::new();
        // The UIDs of the hits, for SAVE.
        let mut hit_uids: Vec<Uid> = Vec::new();
        for (i, u) in view.iter().enumerate() {
            let sctx = SearchContext {
                seq: i as u32 + 1,
                max_seq: view.len() as u32,
                max_uid,
                recent: false,
                saved: self.is_saved(*u),
            };
            let hit = if needs == search::Needs::Index {
                let Some(msg) = ctx.mailbox(&name).and_then(|m| m.messages.get(u)) else {
                    continue;
                };
                search::matches_all(criteria, &sctx, msg, None, None).then_some(msg.modseq)
            } else {
                // Reading the message needs the store, so this message's entry is copied.
                let Some(msg) = ctx.mailbox(&name).and_then(|m| m.messages.get(u)).cloned() else {
                    continue;
                };
                let (raw, meta) = match read_for_search(ctx.store, &name, &msg, needs) {
                    Ok(read) => read,
                    Err(e) => {
                        self.search_failed(save);
                        return self.line(&format!(
                            "{tag} NO [SERVERBUG] {}",
                            one_line(&e.to_string())
                        ));
                    }
                };
                search::matches_all(criteria, &sctx, &msg, Some(&raw), meta).then_some(msg.modseq)
            };
            if let Some(modseq) = hit {
                hits.push((if uid { *u } else { i as u32 + 1 }, modseq));
                hit_uids.push(*u);
            }
        }
        if let Some(options) = return_options.filter(|_| save) {
            self.saved = saved_result(options, hit_uids);
        }
        match return_options {
            // SAVE alone returns nothing but the tagged OK (RFC 5182 §2.1).
            Some([SearchReturnOption::Save]) => {}
            Some(options) => self.esearch(&tag, uid, options, &hits, with_modseq),
            // IMAP4rev2 answers a SEARCH without RETURN as RETURN (ALL) (RFC 9051 §6.4.4).
            None if self.rev2 => self.esearch(&tag, uid, &[], &hits, with_modseq),
            None => {
                let highest = hits.iter().map(|h| h.1).max();
                let modseq = highest
                    .filter(|_| with_modseq)
                    .and_then(std::num::NonZeroU64::new);
                self.data(Data::Search(hits.iter().map(|h| nz(h.0)).collect(), modseq));
            }
        }
        self.sync(ctx.store, uid, uid);
        self.line(&format!("{tag} OK SEARCH completed"));
    }

    /// A SEARCH with SAVE that fails leaves `$` empty (RFC 5182 §2.1).
    fn search_failed(&mut self, save: bool) {
        if save {
            self.saved.clear();
        }
    }

    /// The ESEARCH response for `hits` (ascending numbers with their MODSEQ).
    fn esearch(
        &mut self,
        tag: &str,
        uid: bool,
        options: &[SearchReturnOption],
        hits: &[(u32, ModSeq)],
        with_modseq: bool,
    ) {
        // RETURN () means RETURN (ALL) (RFC 4731 §3.1).
        let wants = |o: SearchReturnOption| {
            options.contains(&o) || (options.is_empty() && o == SearchReturnOption::All)
        };
        let (min, max) = (hits.first(), hits.last());
        let mut items = Vec::new();
        // MIN, MAX and ALL only when something matched; COUNT always.
        if let (true, Some(min)) = (wants(SearchReturnOption::Min), min) {
            items.push(SearchReturnData::Min(nz(min.0)));
        }
        if let (true, Some(max)) = (wants(SearchReturnOption::Max), max) {
            items.push(SearchReturnData::Max(nz(max.0)));
        }
        if wants(SearchReturnOption::Count) {
            items.push(SearchReturnData::Count(hits.len() as u32));
        }
        let all = wants(SearchReturnOption::All);
        if all && !hits.is_empty() {
            let numbers: Vec<u32> = hits.iter().map(|h| h.0).collect();
            if let Ok(set) = SequenceSet::try_from(uid_set(&numbers).as_str()) {
                items.push(SearchReturnData::All(set));
            }
        }
        // MODSEQ: the highest of the messages reported (RFC 7162 §3.1.5).
        if with_modseq {
            let reported: Vec<&(u32, ModSeq)> = if all || wants(SearchReturnOption::Count) {
                hits.iter().collect()
            } else {
                let min = min.filter(|_| wants(SearchReturnOption::Min));
                let max = max.filter(|_| wants(SearchReturnOption::Max));
                min.into_iter().chain(max).collect()
            };
            if let Some(highest) = reported.iter().map(|h| h.1).max().and_then(NonZeroU64::new) {
                items.push(SearchReturnData::ModSeq(highest));
            }
        }
        self.data(Data::ESearch {
            tag: Tag::try_from(tag.to_string()).ok(),
            uid,
            items,
        });
    }
}

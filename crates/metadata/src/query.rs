//! Listing streams: the query, the page, and the keyset cursor behind the opaque page token.
//!
//! Both stores order and filter the same way, so a page token means the same thing to either:
//! the sort key is (start time, id) or (case-folded name, id), compared byte-wise, and a page
//! token carries the sort and the key of the last item served. The next page starts strictly
//! after it, so paging never repeats or skips an item even when start times or names are equal.

use std::cmp::Ordering;

use livecast_core::{StreamId, StreamRecord, StreamStatus};

use crate::MetadataError;

/// The page size used when a query asks for 0 items.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// The largest page served; larger limits are lowered to it.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// The order of a stream listing. Ties are broken by stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StreamSort {
    /// Oldest start time first.
    StartTimeAsc,
    /// Newest start time first.
    #[default]
    StartTimeDesc,
    /// By name, case-insensitively.
    NameAsc,
}

impl StreamSort {
    fn code(self) -> &'static str {
        match self {
            StreamSort::StartTimeAsc => "a",
            StreamSort::StartTimeDesc => "d",
            StreamSort::NameAsc => "n",
        }
    }
}

/// What to list. The default lists every stream, newest first, in pages of [`DEFAULT_PAGE_LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamQuery {
    /// Only streams in one of these statuses; empty means all.
    pub statuses: Vec<StreamStatus>,
    /// Only streams whose name contains this text, case-insensitively; empty means all.
    pub name_contains: Option<String>,
    /// Only streams whose start time (see [`stream_start_ms`]) is at or after this (ms since epoch).
    pub start_from: Option<i64>,
    /// Only streams whose start time is at or before this (ms since epoch).
    pub start_to: Option<i64>,
    /// The order.
    pub sort: StreamSort,
    /// Where to continue: the `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// The most items to return: 0 means [`DEFAULT_PAGE_LIMIT`], more than [`MAX_PAGE_LIMIT`]
    /// means [`MAX_PAGE_LIMIT`].
    pub limit: u32,
}

/// One page of a stream listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamPage {
    /// The streams of this page, in the order asked for.
    pub items: Vec<StreamRecord>,
    /// The token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The time a listing sorts and filters a stream by: when it went live, else when it is
/// scheduled to, else when it was created (ms since epoch).
pub fn stream_start_ms(stream: &StreamRecord) -> i64 {
    stream
        .started_at
        .or(stream.scheduled_start)
        .unwrap_or(stream.created_at)
}

/// The case-folded form of a name that name search and name sort use.
pub fn fold_name(name: &str) -> String {
    name.to_lowercase()
}

/// Where a stream falls in a listing's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SortKey {
    /// (start time, id) for the start-time sorts.
    Start { start_ms: i64, id: String },
    /// (folded name, id) for the name sort.
    Name { name: String, id: String },
}

impl SortKey {
    /// The key of `stream` under `sort`.
    pub(crate) fn of(stream: &StreamRecord, sort: StreamSort) -> SortKey {
        match sort {
            StreamSort::StartTimeAsc | StreamSort::StartTimeDesc => SortKey::Start {
                start_ms: stream_start_ms(stream),
                id: stream.id.as_str().to_owned(),
            },
            StreamSort::NameAsc => SortKey::Name {
                name: fold_name(&stream.name),
                id: stream.id.as_str().to_owned(),
            },
        }
    }

    /// Orders two keys in the listing's order (descending for `StartTimeDesc`).
    fn compare(&self, other: &SortKey, sort: StreamSort) -> Ordering {
        let natural = match (self, other) {
            (SortKey::Start { start_ms: a, id: x }, SortKey::Start { start_ms: b, id: y }) => {
                (a, x).cmp(&(b, y))
            }
            (SortKey::Name { name: a, id: x }, SortKey::Name { name: b, id: y }) => {
                (a, x).cmp(&(b, y))
            }
            // Keys of different sorts never meet: a cursor is checked against its sort on decode.
            (SortKey::Start { .. }, SortKey::Name { .. }) => Ordering::Less,
            (SortKey::Name { .. }, SortKey::Start { .. }) => Ordering::Greater,
        };
        if sort == StreamSort::StartTimeDesc {
            natural.reverse()
        } else {
            natural
        }
    }
}

/// Sorts streams in the listing's order.
pub(crate) fn sort_streams(streams: &mut [StreamRecord], sort: StreamSort) {
    streams.sort_by_cached_key(|s| SortKeyOrd(SortKey::of(s, sort), sort));
}

/// A key with its sort, so `sort_by_cached_key` can use the listing's order.
#[derive(PartialEq, Eq)]
struct SortKeyOrd(SortKey, StreamSort);

impl PartialOrd for SortKeyOrd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKeyOrd {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.compare(&other.0, self.1)
    }
}

/// Encodes the cursor after `last` as an opaque page token.
pub(crate) fn encode_page_token(sort: StreamSort, last: &SortKey) -> String {
    let plain = match last {
        SortKey::Start { start_ms, id } => format!("v1|{}|{start_ms}|{id}", sort.code()),
        // The name goes last: it may contain `|`, an id never does.
        SortKey::Name { name, id } => format!("v1|{}|{id}|{name}", sort.code()),
    };
    plain.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a page token produced by [`encode_page_token`] for the same sort.
pub(crate) fn decode_page_token(sort: StreamSort, token: &str) -> Result<SortKey, MetadataError> {
    let invalid = |why: &str| MetadataError::InvalidPageToken(why.to_owned());
    // Generous: a name cursor carries the whole folded name.
    if !token.len().is_multiple_of(2) || token.len() > 65_536 {
        return Err(invalid("it was not produced by this listing"));
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| invalid("it was not produced by this listing"))?;
    let plain = String::from_utf8(bytes).map_err(|_| invalid("it is not valid text"))?;
    let mut parts = plain.splitn(4, '|');
    let (Some("v1"), Some(code), Some(first), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("it was not produced by this listing"));
    };
    if code != sort.code() {
        return Err(invalid("it belongs to a listing with another sort order"));
    }
    let check_id = |id: &str| {
        StreamId::parse(id)
            .map(|_| id.to_owned())
            .map_err(|_| invalid("it names an invalid stream id"))
    };
    match sort {
        StreamSort::StartTimeAsc | StreamSort::StartTimeDesc => Ok(SortKey::Start {
            start_ms: first
                .parse()
                .map_err(|_| invalid("its start time is not a number"))?,
            id: check_id(rest)?,
        }),
        StreamSort::NameAsc => Ok(SortKey::Name {
            id: check_id(first)?,
            name: rest.to_owned(),
        }),
    }
}

/// A validated query, ready for a store to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListPlan {
    /// Wanted statuses; empty means all.
    pub statuses: Vec<StreamStatus>,
    /// The folded name needle, if any.
    pub name_needle: Option<String>,
    /// Inclusive lower bound of the start time.
    pub start_from: Option<i64>,
    /// Inclusive upper bound of the start time.
    pub start_to: Option<i64>,
    /// The order.
    pub sort: StreamSort,
    /// The key of the last item of the previous page.
    pub after: Option<SortKey>,
    /// The page size, after defaulting and capping.
    pub limit: u32,
}

impl ListPlan {
    /// Validates `query` and decodes its page token.
    pub(crate) fn new(query: &StreamQuery) -> Result<ListPlan, MetadataError> {
        if let (Some(from), Some(to)) = (query.start_from, query.start_to)
            && from > to
        {
            return Err(MetadataError::Invalid(format!(
                "start_from ({from}) is after start_to ({to})"
            )));
        }
        // An empty token is the first page (the proto3 default of a string field).
        let after = query
            .page_token
            .as_deref()
            .filter(|token| !token.is_empty())
            .map(|token| decode_page_token(query.sort, token))
            .transpose()?;
        let mut statuses = query.statuses.clone();
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        Ok(ListPlan {
            statuses,
            name_needle: query
                .name_contains
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(fold_name),
            start_from: query.start_from,
            start_to: query.start_to,
            sort: query.sort,
            after,
            limit: match query.limit {
                0 => DEFAULT_PAGE_LIMIT,
                n => n.min(MAX_PAGE_LIMIT),
            },
        })
    }

    /// Whether `stream` passes the filters (status, name, start range).
    pub(crate) fn matches_filters(&self, stream: &StreamRecord) -> bool {
        let start = stream_start_ms(stream);
        (self.statuses.is_empty() || self.statuses.contains(&stream.status))
            && self
                .name_needle
                .as_deref()
                .is_none_or(|needle| fold_name(&stream.name).contains(needle))
            && self.start_from.is_none_or(|from| start >= from)
            && self.start_to.is_none_or(|to| start <= to)
    }

    /// Whether `key` comes strictly after the page token's cursor.
    pub(crate) fn is_after_cursor(&self, key: &SortKey) -> bool {
        self.after
            .as_ref()
            .is_none_or(|after| key.compare(after, self.sort) == Ordering::Greater)
    }

    /// Builds the page from up to `limit + 1` matching streams in order: the extra one only
    /// tells that another page exists.
    pub(crate) fn page(&self, mut items: Vec<StreamRecord>) -> StreamPage {
        let more = items.len() > self.limit as usize;
        items.truncate(self.limit as usize);
        let next_page_token = match items.last() {
            Some(last) if more => Some(encode_page_token(self.sort, &SortKey::of(last, self.sort))),
            _ => None,
        };
        StreamPage {
            items,
            next_page_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livecast_core::RegionName;
    use proptest::prelude::*;

    fn stream(id: &str, name: &str, created_at: i64) -> StreamRecord {
        StreamRecord {
            id: StreamId::parse(id).unwrap(),
            name: name.into(),
            description: String::new(),
            thumbnail_url: None,
            scheduled_start: None,
            home_region: RegionName::parse("eu-west").unwrap(),
            status: StreamStatus::Created,
            stream_key_hash: format!("hash-{id}"),
            created_at,
            updated_at: created_at,
            started_at: None,
            ended_at: None,
            version: 1,
        }
    }

    #[test]
    fn start_time_prefers_started_then_scheduled_then_created() {
        let mut s = stream("a", "A", 10);
        assert_eq!(stream_start_ms(&s), 10);
        s.scheduled_start = Some(20);
        assert_eq!(stream_start_ms(&s), 20);
        s.started_at = Some(30);
        assert_eq!(stream_start_ms(&s), 30);
    }

    #[test]
    fn tokens_round_trip_for_each_sort() {
        let start = SortKey::Start {
            start_ms: -5,
            id: "abc".into(),
        };
        for sort in [StreamSort::StartTimeAsc, StreamSort::StartTimeDesc] {
            let token = encode_page_token(sort, &start);
            assert_eq!(decode_page_token(sort, &token).unwrap(), start);
        }
        let name = SortKey::Name {
            name: "a|b ünï".into(),
            id: "x1".into(),
        };
        let token = encode_page_token(StreamSort::NameAsc, &name);
        assert_eq!(
            decode_page_token(StreamSort::NameAsc, &token).unwrap(),
            name
        );
    }

    #[test]
    fn foreign_and_malformed_tokens_are_invalid_page_tokens() {
        let token = encode_page_token(
            StreamSort::StartTimeAsc,
            &SortKey::Start {
                start_ms: 1,
                id: "a".into(),
            },
        );
        for (sort, bad) in [
            (StreamSort::StartTimeDesc, token.as_str()),
            (StreamSort::StartTimeAsc, "not-a-token"),
            (StreamSort::StartTimeAsc, "abc"),
            (StreamSort::StartTimeAsc, ""),
            (StreamSort::StartTimeAsc, "7631"),
        ] {
            let err = decode_page_token(sort, bad).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidPageToken(_)), "{bad:?}");
        }
        let path_trick = encode_page_token(
            StreamSort::StartTimeAsc,
            &SortKey::Start {
                start_ms: 1,
                id: "../x".into(),
            },
        );
        assert!(decode_page_token(StreamSort::StartTimeAsc, &path_trick).is_err());
    }

    #[test]
    fn limits_default_and_cap_and_ranges_are_checked() {
        let plan = ListPlan::new(&StreamQuery::default()).unwrap();
        assert_eq!(plan.limit, DEFAULT_PAGE_LIMIT);
        let plan = ListPlan::new(&StreamQuery {
            limit: 1_000_000,
            ..StreamQuery::default()
        })
        .unwrap();
        assert_eq!(plan.limit, MAX_PAGE_LIMIT);
        let err = ListPlan::new(&StreamQuery {
            start_from: Some(10),
            start_to: Some(9),
            ..StreamQuery::default()
        })
        .unwrap_err();
        assert!(matches!(err, MetadataError::Invalid(_)));
    }

    #[test]
    fn filters_are_case_insensitive_and_inclusive() {
        let plan = ListPlan::new(&StreamQuery {
            name_contains: Some("ÉTÉ".into()),
            start_from: Some(10),
            start_to: Some(20),
            statuses: vec![StreamStatus::Created],
            ..StreamQuery::default()
        })
        .unwrap();
        assert!(plan.matches_filters(&stream("a", "Concert d'été", 10)));
        assert!(plan.matches_filters(&stream("a", "ÉTÉ", 20)));
        assert!(!plan.matches_filters(&stream("a", "ÉTÉ", 21)));
        assert!(!plan.matches_filters(&stream("a", "hiver", 15)));
        let mut other = stream("a", "été", 15);
        other.status = StreamStatus::Archived;
        assert!(!plan.matches_filters(&other));
    }

    #[test]
    fn sorting_breaks_ties_by_id_and_desc_reverses() {
        let mut items = vec![
            stream("b", "x", 1),
            stream("a", "x", 1),
            stream("c", "X", 0),
        ];
        sort_streams(&mut items, StreamSort::StartTimeAsc);
        let ids: Vec<_> = items.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        sort_streams(&mut items, StreamSort::StartTimeDesc);
        let ids: Vec<_> = items.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c"]);
        sort_streams(&mut items, StreamSort::NameAsc);
        let ids: Vec<_> = items.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn a_page_carries_a_token_only_when_more_exist() {
        let plan = ListPlan::new(&StreamQuery {
            limit: 2,
            sort: StreamSort::StartTimeAsc,
            ..StreamQuery::default()
        })
        .unwrap();
        let page = plan.page(vec![stream("a", "a", 1), stream("b", "b", 2)]);
        assert_eq!(page.next_page_token, None);
        let page = plan.page(vec![
            stream("a", "a", 1),
            stream("b", "b", 2),
            stream("c", "c", 3),
        ]);
        assert_eq!(page.items.len(), 2);
        let token = page.next_page_token.unwrap();
        let next = ListPlan::new(&StreamQuery {
            page_token: Some(token),
            sort: StreamSort::StartTimeAsc,
            ..StreamQuery::default()
        })
        .unwrap();
        assert!(!next.is_after_cursor(&SortKey::of(&stream("b", "b", 2), next.sort)));
        assert!(next.is_after_cursor(&SortKey::of(&stream("c", "c", 2), next.sort)));
    }

    proptest! {
        #[test]
        fn decoding_any_text_never_panics(token in "\\PC{0,200}") {
            let _ = decode_page_token(StreamSort::NameAsc, &token);
            let _ = decode_page_token(StreamSort::StartTimeAsc, &token);
        }

        #[test]
        fn any_name_cursor_round_trips(name in "\\PC{0,60}", start in any::<i64>()) {
            let key = SortKey::Name { name, id: "id-1".into() };
            let token = encode_page_token(StreamSort::NameAsc, &key);
            prop_assert_eq!(decode_page_token(StreamSort::NameAsc, &token).unwrap(), key);
            let key = SortKey::Start { start_ms: start, id: "id-1".into() };
            let token = encode_page_token(StreamSort::StartTimeDesc, &key);
            prop_assert_eq!(decode_page_token(StreamSort::StartTimeDesc, &token).unwrap(), key);
        }
    }
}

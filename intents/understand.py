"""``understand(text)``: topics, audience, age group, crisis, area, negation and evidence."""

from __future__ import annotations

from intents import cues, negation
from intents.area import find_area
from intents.crisis import assess
from intents.fuzzy import fuzzy_hits
from intents.matcher import Hit, Views, build_views, drop_contained, match_keywords, match_patterns
from intents.rules import cue_rules, topic_rules
from intents.tokenizer import analyse
from intents.types import Evidence, TopicScore, Understanding

MAX_TOPICS = 5


def _evidence(views: Views, h: Hit, kind: str | None = None) -> Evidence:
    return Evidence(
        kind=kind or h.kind,
        label=h.label,
        rule=h.rule,
        matched=views.analysis.text[h.start : h.end],
        weight=round(h.weight, 3),
        fuzzy=h.fuzzy,
    )


def _topic_hits(views: Views, mask_spans: list[tuple[int, int]]) -> list[Hit]:
    rules = topic_rules()
    hits = match_keywords(views) + match_patterns(views, rules.patterns)
    if not any(h.weight >= 2 for h in hits):
        hits += fuzzy_hits(views, {h.rule for h in hits})
    hits = drop_contained(hits)
    absorbs = rules.scoring.frame_absorbs
    if absorbs:
        # 「痴漢にあった」: offence words inside a victim frame say what was done to the writer.
        frames = [(h.start, h.end, absorbs[h.label]) for h in hits if h.label in absorbs]
        mask_spans = mask_spans + [
            (h.start, h.end)
            for h in hits
            if any(s <= h.start and h.end <= e and h.label in labels for s, e, labels in frames)
        ]
    f = rules.scoring.masked_factor
    return [
        Hit(h.kind, h.label, h.rule, h.start, h.end, h.weight * f, h.fuzzy, mask=True)
        if any(s <= h.start and h.end <= e for s, e in mask_spans)
        else h
        for h in hits
    ]


def _score(
    hits: list[Hit], negated: set[int], past: set[int]
) -> tuple[dict[str, float], set[str], set[str]]:
    """Sum hit weights per topic; each rule counts fully once, repeats add a little."""
    sc = topic_rules().scoring
    per_rule: dict[str, tuple[str, float, int]] = {}
    live: dict[str, bool] = {}
    present: dict[str, bool] = {}
    for n, h in enumerate(hits):
        w = h.weight
        if n in negated:
            w *= sc.negated_factor
        elif n in past:
            w *= sc.past_factor
        else:
            live[h.label] = True
        if n not in negated:
            present[h.label] = True
        label, best, count = per_rule.get(h.rule, (h.label, 0.0, 0))
        per_rule[h.rule] = (label, max(best, w), count + 1)
    scores: dict[str, float] = {}
    core: set[str] = set()
    for label, best, count in per_rule.values():
        bonus = min(count - 1, 2) * sc.repeat_bonus * best
        scores[label] = scores.get(label, 0.0) + best + bonus
        if best >= 3:
            core.add(label)
    for label in core:
        scores[label] += sc.lead_bonus.get(label, 0.0)
    labels = {h.label for h in hits}
    negated_topics = {t for t in labels if not present.get(t)}
    past_topics = {t for t in labels if present.get(t) and not live.get(t)}
    return scores, negated_topics, past_topics


def _rank(scores: dict[str, float]) -> list[TopicScore]:
    sc = topic_rules().scoring
    order = {t: n for n, t in enumerate(sc.priority)}
    ranked = sorted(
        ((t, s) for t, s in scores.items() if s >= sc.min_topic_score),
        key=lambda ts: (-round(ts[1], 6), order.get(ts[0], 99)),
    )
    return [TopicScore(t, round(s, 3)) for t, s in ranked[:MAX_TOPICS]]


def understand(text: str) -> Understanding:
    """Understand one message.

    Args:
        text: the message as typed (any string; empty or symbol-only gives topic other).

    Returns:
        Ranked topics with scores, audience, age group, crisis level, area, negated and
        past topics, the evidence behind each decision, confidence and scope.
    """
    analysis = analyse(text)
    views = build_views(analysis)
    cr = cue_rules()
    sc = topic_rules().scoring

    audience_hits = match_patterns(views, cr.audience)
    mask_spans = [(h.start, h.end) for h in audience_hits if h.mask]
    topic_hits = _topic_hits(views, mask_spans)
    past_spans = negation.past_spans(views, match_patterns(views, cr.past))
    negated = {n for n, h in enumerate(topic_hits) if negation.is_negated(views, h)}
    past = {n for n, h in enumerate(topic_hits) if negation.in_past(h, past_spans)}
    scores, negated_topics, past_topics = _score(topic_hits, negated, past)
    if mask_spans and not _rank(scores):
        # 「新任の保護司です。…」: the self-introduction is all there is to go on.
        topic_hits = _topic_hits(views, [])
        scores, negated_topics, past_topics = _score(topic_hits, negated, past)

    provisional = _rank(scores)
    age_hits = match_patterns(views, cr.age_group) + cues.age_number_hits(views)
    age_group = cues.decide_age(age_hits, provisional[0].topic if provisional else "other")
    boost = sc.minor_boost if age_group == "minor" else {}
    if age_group == "elderly":
        boost = sc.elderly_boost
    for topic, extra in boost.items():
        if scores.get(topic, 0.0) > 0:
            scores[topic] += extra
    topics = _rank(scores)

    crisis = assess(analysis)
    top = topics[0].score if topics else 0.0
    # Scope cues matter only when nothing strong was found (run lazily: they cost a scan each).
    unrelated = match_patterns(views, cr.unrelated) if top < 3.0 else []
    if crisis.level != "none":
        in_scope = True
    elif unrelated:
        in_scope = False
    else:
        in_scope = bool(topics) or bool(audience_hits) or bool(match_patterns(views, cr.consult))
    if not in_scope:
        topics = []
    # A crisis said with no one named is the writer's own (the dev set's convention).
    audience = cues.decide_audience(
        audience_hits, has_topic=bool(topics) or crisis.level != "none"
    )
    if topics:
        age_group = cues.decide_age(age_hits, topics[0].topic)
    area, area_evidence = find_area(views)

    second = topics[1].score if len(topics) > 1 else 0.0
    companion = len(topics) > 1 and topics[1].topic in sc.companion_topics
    confident = (
        bool(topics)
        and top >= sc.confident_score
        and ((top - second) >= sc.confident_margin or companion)
    )
    if crisis.level != "none":
        confident = True  # crisis answers never wait for a clarifying question

    kept = {t.topic for t in topics}
    evidence: list[Evidence] = []
    for n, h in enumerate(topic_hits):
        if h.label in kept or n in negated:
            evidence.append(_evidence(views, h))
        if n in negated:
            evidence.append(_evidence(views, h, "negation"))
        elif n in past:
            evidence.append(_evidence(views, h, "time"))
    evidence += [_evidence(views, h) for h in audience_hits]
    evidence += [_evidence(views, h) for h in age_hits]
    evidence += list(area_evidence)
    evidence += list(crisis.evidence)
    if not in_scope:
        evidence += [_evidence(views, h) for h in unrelated]

    return Understanding(
        topics=tuple(topics) or (TopicScore("other", 0.0),),
        audience=audience,
        age_group=age_group,
        crisis=crisis.level,
        crisis_categories=crisis.categories,
        area=area,
        negated_topics=tuple(sorted(negated_topics)),
        past_topics=tuple(sorted(past_topics)),
        evidence=tuple(evidence),
        confident=confident,
        in_scope=in_scope,
    )

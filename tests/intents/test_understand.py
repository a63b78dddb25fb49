"""understand(): topics, audience, age group, area, negation, time, scope, confidence."""

from __future__ import annotations

import pytest

from intents import understand
from intents.rules import TOPICS

pytestmark = pytest.mark.usefixtures("sudachi")

TOPIC_EXAMPLES = {
    "theft": "万引きがどうしてもやめられません",
    "drugs": "大麻をやめたいのに、また吸ってしまった",
    "alcohol": "毎日お酒を飲みすぎて記憶がなくなります",
    "gambling": "競艇で生活費を使い込んでしまいました",
    "sexual": "電車で痴漢をしてしまう衝動がおさえられない",
    "violence": "夫の暴力がひどくて家にいるのが怖い",
    "child_abuse": "隣の家で虐待されている子がいるかもしれません",
    "juvenile": "中学生の息子が夜遊びをして補導されました",
    "housing": "出所したけど住むところがありません",
    "employment": "前科があって就職できません。履歴書の書き方も分からない",
    "livelihood": "生活保護を受けたいのですが、どこで申請できますか",
    "health": "弟は知的障害があって、通院を嫌がります",
    "legal": "国選弁護人はどうやって頼めばいいですか",
    "probation": "保護観察中の遵守事項について知りたい",
    "victim": "特殊詐欺の被害にあいました",
    "isolation": "話し相手がいなくて孤独です",
}


def test_every_topic_has_an_example() -> None:
    assert set(TOPIC_EXAMPLES) == set(TOPICS) - {"other"}


@pytest.mark.parametrize(("topic", "text"), sorted(TOPIC_EXAMPLES.items()))
def test_each_topic(topic: str, text: str) -> None:
    u = understand(text)
    assert u.topic == topic
    assert u.in_scope
    assert any(
        e.kind == "topic" and e.label == topic and e.matched in u_text(text) for e in u.evidence
    )
    assert len(u.topics) <= 5
    assert [t.score for t in u.topics] == sorted((t.score for t in u.topics), reverse=True)


def u_text(text: str) -> str:
    from intents.normalize import normalize

    return normalize(text)


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("息子が覚醒剤で捕まりました", "family"),
        ("母（80）が万引きをしてしまいました", "family"),
        ("保護司です。担当の方が仕事を探しています", "supporter"),
        ("ケースワーカーをしています。利用者さんの飲酒が心配です", "supporter"),
        ("協力雇用主として雇った人が無断欠勤します", "supporter"),
        ("近所のおじいさんがよく万引きしているのを見ます", "resident"),
        ("隣の部屋から毎晩怒鳴り声が聞こえます", "resident"),
        ("私はパチンコがやめられません", "self"),
        ("ぼくはもうお酒をやめたい", "self"),
        ("元夫がつきまとってきます", "self"),  # 元夫 is not the writer's family now
        ("親に怒られた。補導された", "self"),  # 親に = the writer is the child
        ("相談したいです", "unknown"),
    ],
)
def test_audience(text: str, audience: str) -> None:
    assert understand(text).audience == audience


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("80歳の父が万引きしました", "elderly"),
        ("70代の母がパチンコに通っています", "elderly"),
        ("認知症の母がお店の物を持って帰ってきます", "elderly"),
        ("ﾁﾁｵﾔ 78ｻｲ ｶﾞ ﾏﾝﾋﾞｷ", "elderly"),
        ("中2の息子が補導されました", "minor"),
        ("高校生の娘が大麻を持っていました", "minor"),
        ("17歳です。少年院を出て仕事を探しています", "minor"),
        ("息子（28）が覚醒剤で逮捕されました", "adult"),
        ("夫が痴漢で逮捕されました", "adult"),
        ("まんびきがやめられないです", "unknown"),
    ],
)
def test_age_group(text: str, age: str) -> None:
    assert understand(text).age_group == age


def test_child_topics_imply_a_minor() -> None:
    assert understand("娘の体にあざがあって虐待が心配です").age_group == "minor"


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("兄は暴力はふるいません。でも飲むとお金を使ってしまいます", "violence"),
        ("娘は違法な薬はやってないと思います", "drugs"),
        ("お酒はもうやめました", "alcohol"),
    ],
)
def test_negation(text: str, negated: str) -> None:
    u = understand(text)
    assert negated in u.negated_topics
    assert any(e.kind == "negation" and e.label == negated for e in u.evidence)


@pytest.mark.parametrize(
    "text",
    [
        "万引きがやめられない",
        "覚醒剤をやめられません",
        "パチンコが止まらない",
    ],
)
def test_cannot_stop_is_not_a_negation(text: str) -> None:
    u = understand(text)
    assert u.negated_topics == ()
    assert u.topic in ("theft", "drugs", "gambling")


def test_negated_topic_yields_to_the_present_worry() -> None:
    u = understand("兄は暴力はふるいません。でも飲むとお金を全部使ってしまい、仕事も休みがちです")
    assert u.topic == "alcohol"


def test_past_topics() -> None:
    u = understand("昔、覚醒剤で捕まったことがあります。今は仕事が見つからなくて困っています")
    assert "drugs" in u.past_topics
    assert u.topic == "employment"
    assert any(e.kind == "time" and e.label == "drugs" for e in u.evidence)


@pytest.mark.parametrize(
    ("text", "pref", "muni"),
    [
        ("東京都新宿区に住んでいます。息子が万引きを", "13", "131041"),
        ("大阪で父が一人暮らしです", "27", None),
        ("横浜市の保護観察所に行きたい", "14", "141003"),
        ("とうきょうにすんでます", "13", None),
        ("北区の母が", None, None),  # 北区 alone is ambiguous (Tokyo, Osaka, Nagoya…)
        ("サンプル市に住んでいます", "99", "999999"),  # the shipped sample municipality
    ],
)
def test_area(text: str, pref: str | None, muni: str | None) -> None:
    area = understand(text).area
    if pref is None:
        assert area is None
        return
    assert area is not None
    assert area.prefecture_code == pref
    assert area.municipality_code == muni


@pytest.mark.parametrize(
    "text",
    [
        "明日の天気おしえて",
        "近くでおいしいラーメン屋ありますか",
        "ゲームでキャラ殺しちゃったｗ 復活アイテムってどこ？",
        "iPhoneの充電がすぐなくなるんですけど",
    ],
)
def test_out_of_scope(text: str) -> None:
    u = understand(text)
    assert not u.in_scope
    assert u.topic == "other"


@pytest.mark.parametrize(
    "text", ["相談したいです", "ここって匿名で相談できますか？", "家族のことでちょっと…"]
)
def test_vague_openers_are_in_scope(text: str) -> None:
    u = understand(text)
    assert u.in_scope and u.topic == "other" and not u.confident


def test_confidence() -> None:
    assert understand("覚醒剤がやめられません。ダルクに行きたい").confident
    assert not understand("逮捕").confident  # weak
    tie = understand("パチンコとお酒がやめられない")
    assert {tie.topics[0].topic, tie.topics[1].topic} == {"gambling", "alcohol"}
    assert not tie.confident  # two topics tie: the dialogue asks


@pytest.mark.parametrize(
    "text", ["", "   ", "😭😭😭", "\x00\x01\x02", "!!!???", "a" * 100_000, "\ud800\udfff"]
)
def test_odd_input_never_raises(text: str) -> None:
    u = understand(text)
    assert u.topics
    assert u.crisis in ("none", "concern", "urgent")


def test_evidence_names_rule_and_span() -> None:
    u = understand("ﾏﾝﾋﾞｷ ｶﾞ ﾔﾒﾗﾚﾅｲ")
    ev = next(e for e in u.evidence if e.kind == "topic" and e.label == "theft")
    assert ev.rule.startswith("theft.")
    assert ev.matched == "マンビキ"


# ── Failure families found by blind batches (general rules, checked with new wordings) ──


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("母は81です。最近お店で会計前の物を持って帰ってきます", "elderly"),
        ("祖父が88になりますが、お酒がやめられません", "elderly"),
        ("父（79）がパチンコばかり", "elderly"),
        ("高齢の叔父が一人でアパートに住んでいて心配", "elderly"),
        ("年金暮らしの母がまた万引きをしました", "elderly"),
        ("中1の娘が夜遊びを", "minor"),
        ("高２の息子がタバコを吸っています", "minor"),
        ("15歳の息子が万引きで捕まりました", "minor"),
        # 18 and over are adults under the Civil Code (number ages; see the README)
        ("19歳の息子が万引きで捕まりました", "adult"),
        ("職業訓練校の指導員です。前科のある生徒の就職先を探しています", "adult"),
    ],
)
def test_age_families(text: str, age: str) -> None:
    assert understand(text).age_group == age


@pytest.mark.parametrize(
    "text",
    [
        "お金を払わずにお店から出てきてしまうことがあります",
        "会計していない商品をかばんに入れてしまう",
        "レジを通さないで持って出てしまいました",
        "コンビニで菓子をくすねる癖がやめられない",
        "友達とつるんで自転車をパクってしまった",
        "店の品物を盗んでしまいました",
    ],
)
def test_theft_paraphrases(text: str) -> None:
    assert understand(text).topic == "theft"


@pytest.mark.parametrize(
    "text",
    [
        "イライラして子どもを叩いてしまいます",
        "息子に手をあげてしまう自分が怖い",
        "中1です。父親に毎日のように殴られてる",
        "近所の子の腕や顔にいつもあざがある",
    ],
)
def test_child_hurt_is_child_abuse_not_dv(text: str) -> None:
    from knowledge.routing import route_kinds

    u = understand(text)
    assert u.topic == "child_abuse"
    kinds = [k.kind for k in route_kinds(u)[:3]]
    assert "child_guidance_center" in kinds and "dv_support" not in kinds


@pytest.mark.parametrize(
    "text",
    [
        "通勤電車でちかんにあいました",
        "娘が塾帰りに盗撮されたみたいです",
        "駅で財布をすられて、カードも盗まれた",
        "祖母が詐欺の被害に遭いました",
        "夜道でひったくられて怖いです",
    ],
)
def test_victims_are_victims(text: str) -> None:
    from knowledge.routing import route_kinds

    u = understand(text)
    assert u.topic == "victim"
    kinds = {k.kind for k in route_kinds(u)}
    assert {"victim_support", "police_consultation"} & kinds
    assert not kinds & {"self_help_group", "addiction_clinic", "juvenile_support_center"}


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("アムカがやめられなくて困ってます", "health"),
        ("自傷がとまらない", "health"),
        ("あの上司いつかぶっ殺す", "violence"),
        ("元彼を殺してやりたい", "violence"),
    ],
)
def test_crisis_like_text_gets_a_topic(text: str, topic: str) -> None:
    u = understand(text)
    assert u.topic == topic
    assert u.crisis != "none"


@pytest.mark.parametrize(
    "text", ["昨日は死ぬほど残業した", "今週は死ぬほど働いたからラーメン食べたい"]
)
def test_hyperbole_is_out_of_scope(text: str) -> None:
    u = understand(text)
    assert not u.in_scope and u.topic == "other" and u.crisis == "none"


@pytest.mark.parametrize("text", ["こんばんは", "初めまして", "聞いてほしいことがあるんですが"])
def test_greetings_are_in_scope_with_general_desks(text: str) -> None:
    from knowledge.routing import route_kinds

    u = understand(text)
    assert u.in_scope and u.topic == "other" and u.audience == "unknown"
    assert [k.kind for k in route_kinds(u)[:2]] == ["probation_office", "municipal_welfare"]


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("近所の子どもが夜遅くまで外で騒いでいて補導されないか心配", "resident"),
        ("隣に住んでるおばあさんが最近お金がないと言ってます", "resident"),
        ("知り合いのおじいさんが競馬で年金を使い切ってしまう", "resident"),
        ("区の生活福祉課の担当です。出所者の住まいを探しています", "supporter"),
        ("病院の相談員です。患者さんの飲酒について", "supporter"),
        ("受刑者の家族です。面会のことを聞きたい", "family"),
        ("うちの人がまた酒を飲んで暴れています", "family"),
        ("連れ合いがギャンブルで借金をつくりました", "family"),
        ("先輩がシャブやってて、俺も誘われてる", "self"),
    ],
)
def test_audience_families(text: str, audience: str) -> None:
    assert understand(text).audience == audience


def test_module_and_package_both_give_the_function() -> None:
    import intents
    from intents.understand import understand as direct

    assert intents.understand is direct
    assert direct("万引きがやめられない").topic == "theft"


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("夫は60代後半で、最近お酒の量が増えました", "elderly"),
        ("母は60代前半で、パチンコに通っています", "adult"),
        ("おふくろが83なんですが、物忘れがひどくて", "elderly"),
        ("ﾑｽﾒ ｶﾞ ｺｳｺｳ ﾃﾞ ﾀﾊﾞｺ ｦ ｽｯﾃﾙ", "minor"),
    ],
)
def test_age_families_second_batch(text: str, age: str) -> None:
    assert understand(text).age_group == age


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("取引先の人にパワハラされてます", "victim"),
        ("帰り道にあとをつけられて怖かった", "victim"),
        ("上の階の人が毎晩奥さんをどなりつけてる", "violence"),
        ("レジですませずに出てしまうことがある", "theft"),
    ],
)
def test_topic_families_second_batch(text: str, topic: str) -> None:
    assert understand(text).topic == topic


def test_a_stranger_met_online_is_delinquency_risk_not_a_stalker() -> None:
    assert understand("中2の娘がネットで知り合った男と会っているみたい").topic == "juvenile"
    assert understand("知らない男にあとをつけられた").topic == "victim"


def test_a_past_offence_behind_a_court_summons_is_not_the_topic() -> None:
    u = understand("去年の窃盗のことで家裁から呼び出しがありました")
    assert u.topic in {"legal", "juvenile"}
    assert "theft" in u.past_topics


@pytest.mark.parametrize(
    ("text", "not_topic"),
    [
        ("毎日いつも駅で待ってる彼氏がかわいい", "violence"),  # waiting is not stalking
        ("ドラッグストアで目薬を買いました", "drugs"),  # a shop, not a drug
    ],
)
def test_family_rules_do_not_overreach(text: str, not_topic: str) -> None:
    assert understand(text).topic != not_topic


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("近所の子が親からネグレクトされてるんじゃないかと思います", "child_abuse"),
        ("息子が大麻をやってないか心配です", "drugs"),
    ],
)
def test_a_suspicion_is_not_a_negation(text: str, topic: str) -> None:
    u = understand(text)
    assert u.topic == topic
    assert topic not in u.negated_topics


# Families added after the third blind batch, checked with wordings not in any eval set.
@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("母がまたコンビニで物とってきたみたいです", "theft"),
        ("ドラッグストアでまたやってしまいました。やめたいです", "theft"),
        ("元カノを着信拒否したら新しい番号でかけてきます", "violence"),
        ("別れた夫から毎日しつこくメールが来ます", "violence"),
        ("上の階のベランダに小さい子が閉め出されて泣いてます", "child_abuse"),
        ("駅の階段で後ろから抱きつかれました", "victim"),
        ("ひったくりにあって、犯人はまだ見つかっていません", "victim"),
        ("家族とは縁が切れて、誰ともほとんど話さない毎日です", "isolation"),
        ("前科があっても雇ってくれる会社ってありますか", "employment"),
        ("ハロワで求人を見てるけど全然だめ", "employment"),
        ("更衣室にカメラを仕掛けたくなる自分が嫌です", "sexual"),
        ("のぞきがどうしてもやめられません", "sexual"),
    ],
)
def test_blind3_families(text: str, topic: str) -> None:
    assert understand(text).topic == topic


@pytest.mark.parametrize(
    ("text", "not_topic"),
    [
        ("介護の資格を取りたいんですが、前科があっても大丈夫ですか", "theft"),  # 取る ≠ 盗る
        ("昔の写真をとるのが好きで、今も撮ってます。出所して半年です", "theft"),
        ("窃盗で服役していた方を雇う予定の社長です。何を準備すればいいですか", "theft"),
        ("傷害で捕まった弟が来月出てきます", "health"),  # 傷害 ≠ 障害
    ],
)
def test_look_alike_words_do_not_make_a_topic(text: str, not_topic: str) -> None:
    assert understand(text).topic != not_topic


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("父は八十五歳になります。最近万引きを繰り返しています", "elderly"),
        ("七十を過ぎた母が、また店から物を持って帰ってきました", "elderly"),
        ("うちの母ちゃん(81)が詐欺の電話にだまされそう", "elderly"),
        ("十六歳の息子が補導されました", "minor"),
        ("高2。親には言えない", "minor"),
        ("介護職として働きたいのですが、前科があると難しいでしょうか", "adult"),
    ],
)
def test_ages_in_kanji_and_relatives(text: str, age: str) -> None:
    assert understand(text).age_group == age


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("隣のおばあちゃん（90近く）が夜中に外を歩いていて心配です", "resident"),
        ("向かいのご主人が奥さんを怒鳴っていて、心配しています", "resident"),
        ("思わず息子を叩いてしまいました。どうしたらいいか", "self"),
    ],
)
def test_blind3_audiences(text: str, audience: str) -> None:
    assert understand(text).audience == audience


def test_a_settled_matter_and_before_doing_are_not_the_worry() -> None:
    u = understand("罰金で済んだけど、また万引きしそうで怖い")
    assert u.topic == "theft"
    u = understand("受け入れる前に保護観察所と相談したいです")
    assert "probation" not in u.past_topics


# Families added after the fourth blind batch, in other wordings.
@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("眠剤がないと眠れない。もう毎日飲んでる", "drugs"),  # ないと: a condition
        ("ネットで知り合った人に写真を送ったら、拡散するぞって脅されてます", "victim"),
        ("近所との付き合いもなく、一日中テレビを見ています。出所して一年です", "isolation"),
        ("寂しくて、昔の仲間に連絡しそうになります", "isolation"),
        ("明日保護司さんとの初めての面接で死ぬほど緊張してる", "probation"),
    ],
)
def test_blind4_families(text: str, topic: str) -> None:
    assert understand(text).topic == topic


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("自治会の役員をしております。近所に出所した方が越してきました", "resident"),
        ("保護司やってます。対象者が連絡に出ません", "supporter"),
        ("民生委員の山田と申します。地区の高齢の方が万引きをしているようです", "supporter"),
        ("知り合いのばあさん(80過ぎ)がまた店で物を持って帰ったらしい", "resident"),
        ("にーにーが酒飲んで暴れてる", "family"),
    ],
)
def test_blind4_audiences(text: str, audience: str) -> None:
    assert understand(text).audience == audience


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("40にもなって弟がまた捕まりました", "adult"),
        ("アパートの2階に住む80代の男性が、刑務所から出てきた方だと聞きました", "elderly"),
        ("息子（中3）が補導されました", "minor"),
    ],
)
def test_blind4_ages(text: str, age: str) -> None:
    assert understand(text).age_group == age


@pytest.mark.parametrize(
    "text", ["さっきの件なんですけど", "どこに連絡すればいいですか", "昨日の続きです"]
)
def test_follow_ups_are_in_scope(text: str) -> None:
    assert understand(text).in_scope


# Families added after the fifth blind batch, in other wordings.
@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("保証会社の審査に落ちて部屋が借りられません。出所して二か月です", "housing"),
        ("2歳の息子に毎日イライラして、つい何度も叩いてしまう", "child_abuse"),
        ("親戚にも縁を切られて、だれも味方がいません", "isolation"),
        ("協力雇用主の方から、出所した人を雇ってくれないかと頼まれました", "employment"),
    ],
)
def test_blind5_families(text: str, topic: str) -> None:
    assert understand(text).topic == topic


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("同じ職場の後輩が、最近お酒臭いまま出勤してきます", "resident"),
        ("友人の代わりに書いています。彼は仮釈放中で仕事が見つかりません", "resident"),
        ("恋人が大麻をやめられないみたいで心配です", "family"),
        ("小さな建設会社をやっています。出所した人を雇うか迷っています", "supporter"),
    ],
)
def test_blind5_audiences(text: str, audience: str) -> None:
    assert understand(text).audience == audience


def test_a_student_and_decades_in_kana() -> None:
    assert understand("大学2年です。市販薬をやめられません").age_group == "adult"
    assert understand("40だいです。ギャンブルがやめられない").age_group == "adult"


def test_pets_are_out_of_scope() -> None:
    assert not understand("保護猫を引き取りたいのですが、どこに聞けばいいですか").in_scope


def test_blind6_families() -> None:
    u = understand("元彼に下着の写真を拡散されました。学校に行けません")
    assert u.topic == "victim"
    u = understand("窃盗がやめられません。罰金も二回払いましたし、逮捕もされました")
    assert u.topic == "theft"


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("オンカジで給料が全部なくなりました", "gambling"),
        ("公園で下半身を出している男の人を見ました", "sexual"),
        ("彼氏に髪をつかまれて壁に押しつけられます", "violence"),
        ("孫を名乗る電話で父が200万円渡してしまいました", "victim"),
        ("兄が車にはねられて亡くなりました。加害者は飲酒運転でした", "victim"),
    ],
)
def test_holdout_families(text: str, topic: str) -> None:
    assert understand(text).topic == topic


@pytest.mark.parametrize(
    ("text", "audience", "age"),
    [
        ("保護司を拝命して半年です。対象者が面接に来ません", "supporter", "unknown"),
        ("グループホームで働いています。利用者さんが万引きを繰り返します", "supporter", "unknown"),
        ("19の娘が大麻をやっているようです", "family", "adult"),
        ("まだ15なんだけど、先輩に誘われて闇バイトした", "self", "minor"),
        ("定年して三年、酒の量が増えるばかりです", "self", "elderly"),
    ],
)
def test_holdout_writers_and_ages(text: str, audience: str, age: str) -> None:
    u = understand(text)
    assert (u.audience, u.age_group if age != "unknown" else "unknown") == (audience, age)


def test_a_settled_settlement_and_a_door_kicked() -> None:
    u = understand("盗撮をしてしまい、示談が成立しました。二度としないために治療を受けたい")
    assert u.topic == "sexual"
    assert understand("彼氏に玄関のドアを蹴られて怖い").topic == "violence"


def test_batch15_families() -> None:
    assert understand("欲しくもない電池をバッグに入れてしまいます").topic == "theft"
    assert understand("隣の奥さんの顔にあざがあって心配です").topic == "violence"
    assert understand("前科があります(詐欺)。履歴書の賞罰欄はどう書けば").topic != "theft"
    assert understand("うちのおかんが万引きで捕まった").audience == "family"
    assert understand("赤ちゃんを揺さぶってしまいそうで怖いです").audience == "self"
    u = understand("病院で事務の仕事をしております。患者さんが保護観察中だそうです")
    assert u.audience == "supporter"

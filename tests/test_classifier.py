"""The classifier as the core uses it: situation, confidence, signals, brand vocabulary, training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bot.classifier import BrandVocabulary, Classification, Classifier
from bot.classifier.model import load_model
from bot.classifier.train import train
from bot.models import SITUATIONS


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


@pytest.mark.parametrize(
    ("text", "situation"),
    [
        ("@AcmeTel my internet has been down since yesterday and nobody answers the phone", "complaint"),
        ("@AcmeTel you charged me twice this month, I want my money back", "complaint"),
        ("@AcmeTel интернет не работает уже третий день, верните деньги", "complaint"),
        ("@AcmeTel sinyal ilang terus dari kemarin, kecewa bgt", "complaint"),
        ("@AcmeTel النت مقطوع من امس وما احد يرد علينا", "complaint"),
        ("@AcmeTel how much is the unlimited plan per month?", "price_question"),
        ("@AcmeTel сколько стоит безлимитный тариф в месяц?", "price_question"),
        ("@AcmeTel berapa harga paket unlimited sebulan min?", "price_question"),
        ("@AcmeTel كم سعر الباقة الشهرية؟", "price_question"),
        ("@AcmeTel what's your support email? I'd like to talk to someone", "contact_request"),
        ("@AcmeTel can someone DM me please", "contact_request"),
        ("@AcmeTel thank you so much, the new app is great!", "other"),
        ("@AcmeTel спасибо, всё отлично работает!", "other"),
    ],
)
def test_clear_posts_get_their_situation(classifier: Classifier, text: str, situation: str) -> None:
    assert classifier.classify(text).situation == situation


@pytest.mark.parametrize(
    "text",
    [
        "@AcmeTel your fucking app crashed AGAIN and ate my payment, useless garbage",
        "@AcmeTel бл*ть, опять списали деньги дважды, вы там совсем охренели?",
        "@AcmeTel anjing, pulsa kepotong terus padahal gak pake apa2",
        "@AcmeTel حسبي الله عليكم خصمتوا رصيدي مرتين يا حرامية",
    ],
)
def test_a_rude_real_complaint_is_a_complaint_not_trolling(classifier: Classifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.situation == "complaint"
    assert result.angry


def test_result_shape(classifier: Classifier) -> None:
    result = classifier.classify("@AcmeTel my order #A12345 never arrived, mail me at jane@example.com")
    assert isinstance(result, Classification)
    assert result.lang == "en"
    assert set(result.scores) == set(SITUATIONS)
    assert math.isclose(sum(result.scores.values()), 1.0, abs_tol=1e-3)
    assert result.situation in SITUATIONS
    assert result.confidence == result.scores[result.situation]
    assert 0.0 <= result.confidence <= 1.0
    assert [p.kind for p in result.personal_data] == ["order", "email"]


def test_other_languages_use_the_default(classifier: Classifier) -> None:
    text = "Bonjour, pourquoi ma connexion ne marche pas depuis hier ?"
    assert classifier.classify(text, default_lang="ar").lang == "ar"
    assert classifier.classify(text, default_lang="ru").lang == "ru"


def test_unknown_default_language_is_refused(classifier: Classifier) -> None:
    with pytest.raises(ValueError, match="default_lang"):
        classifier.classify("hello", default_lang="fr")


def test_confidence_is_lower_for_a_vague_post(classifier: Classifier) -> None:
    clear = classifier.classify("@AcmeTel how much does the premium plan cost per month?")
    vague = classifier.classify("@AcmeTel hmm")
    assert vague.confidence < clear.confidence


@pytest.mark.parametrize(
    ("text", "angry"),
    [
        ("@AcmeTel WTF, internet down AGAIN!!! fix it", True),
        ("@AcmeTel THIS IS THE THIRD TIME MY PARCEL IS LATE", True),
        ("@AcmeTel I'm cancelling my contract and going to the regulator", True),
        ("@AcmeTel бля, опять ничего не работает", True),
        ("@AcmeTel anjing sinyal ilang terus", True),
        ("@AcmeTel حسبي الله عليكم النت فاصل 😡", True),
        ("@AcmeTel hi, quick question about roaming in Spain", False),
        ("@AcmeTel подскажите, как подключить роуминг?", False),
        ("@AcmeTel makasih min udah dibantu", False),
    ],
)
def test_angry_signal(classifier: Classifier, text: str, angry: bool) -> None:
    assert classifier.classify(text).angry is angry


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [
        ("STOP", True),
        ("@AcmeTel stop", True),
        ("@AcmeTel please stop replying to me", True),
        ("@AcmeTel don't reply to me, bot", True),
        ("@AcmeTel unsubscribe", True),
        ("@AcmeTel стоп", True),
        ("@AcmeTel не пишите мне больше", True),
        ("@AcmeTel berhenti", True),
        ("@AcmeTel jangan balas lagi", True),
        ("@AcmeTel توقف", True),
        ("@AcmeTel توقفوا عن الرد علي", True),
        ("@AcmeTel my app stopped working", False),
        ("@AcmeTel stop charging me twice!", False),
        ("@AcmeTel приложение перестало работать", False),
        ("@AcmeTel aplikasi berhenti sendiri terus", False),
        ("@AcmeTel توقف النت من امس", False),
    ],
)
def test_opt_out_signal(classifier: Classifier, text: str, opt_out: bool) -> None:
    assert classifier.classify(text).opt_out is opt_out


@pytest.mark.parametrize(
    ("text", "bot_like"),
    [
        ("Thank you for your message. I am out of the office until Monday.", True),
        ("This is an automated message, please do not reply.", True),
        ("Автоответ: я в отпуске до 15 числа", True),
        ("Ini adalah pesan otomatis, terima kasih", True),
        ("win now #giveaway #free #crypto #airdrop #win #money http://url", True),
        ("@AcmeTel my internet is down again", False),
    ],
)
def test_bot_like_signal(classifier: Classifier, text: str, bot_like: bool) -> None:
    assert classifier.classify(text).bot_like is bot_like


def test_brand_keywords_move_a_post_to_their_situation() -> None:
    text = "@AcmeTel is the Zorblax bundle still around?"
    vocabulary = BrandVocabulary(keywords={"price_question": {"en": ["zorblax bundle"]}}, examples={})
    plain = Classifier.load().classify(text)
    branded = Classifier.load(vocabulary).classify(text)
    assert branded.situation == "price_question"
    assert branded.scores["price_question"] > plain.scores["price_question"]


def _write_examples(directory: Path) -> None:
    posts = {
        "complaint": ["my internet is down", "app crashed again", "charged twice, refund me", "parcel never came"],
        "simple_question": ["how do I change my pin?", "do you open on sunday?", "where is the settings menu?"],
        "price_question": ["how much is the plan?", "any student discount?", "why so expensive?"],
        "contact_request": ["dm me please", "what is your support email?", "call me back please"],
        "trolling": ["your brand is trash lol", "who even uses this garbage", "clowns"],
        "other": ["love the new logo", "thanks, great service!", "happy friday everyone"],
    }
    lines = [json.dumps({"text": t, "label": label}) for label, texts in posts.items() for t in texts]
    (directory / "train-en.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "train-ru.jsonl").write_text(
        json.dumps({"text": "не работает интернет", "label": "complaint"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


def test_training_is_reproducible_and_uses_brand_examples(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_examples(data)
    first = train(tmp_path / "a.json", data_dir=data, folds=2)
    second = train(tmp_path / "b.json", data_dir=data, folds=2)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert first.examples == second.examples == 20
    assert first.by_lang == {"en": 19, "ru": 1}

    vocabulary = BrandVocabulary(keywords={}, examples={"price_question": {"en": ["is the zorblax bundle included?"]}})
    branded = train(tmp_path / "c.json", vocabulary, data_dir=data, folds=2)
    assert branded.brand_examples == 1
    assert (tmp_path / "c.json").read_bytes() != (tmp_path / "a.json").read_bytes()

    model = Classifier.load(model_path=tmp_path / "c.json")
    assert model.classify("is the zorblax bundle included?").situation == "price_question"
    assert load_model(tmp_path / "c.json").info["brand_examples"] == 1


def test_calibration_shifts_each_language_and_picks_the_cost_with_the_best_macro_f1() -> None:
    import numpy as np

    from bot.classifier.calibration import fit_calibration

    complaint, other = SITUATIONS.index("complaint"), SITUATIONS.index("other")
    # Real Russian posts the examples over-call complaints: half the praise looks like a complaint.
    raw = np.full((40, len(SITUATIONS)), 0.02)
    raw[:20, complaint], raw[:20, other] = 0.8, 0.1  # complaints, rightly
    raw[20:30, complaint], raw[20:30, other] = 0.55, 0.35  # praise the model leans to call complaints
    raw[30:, other] = 0.9
    raw /= raw.sum(axis=1, keepdims=True)
    y = [complaint] * 20 + [other] * 20
    calibration = fit_calibration(raw, y, ["ru"] * 40, complaint, "test")
    shift = calibration.bias["ru"]
    assert shift[other] > shift[complaint]  # the praise is moved back towards `other`
    assert calibration.complaint_cost == 1.0  # a higher cost only calls more praise complaints
    assert set(calibration.temperature) == {"ru"}


def test_the_decision_weighs_complaints_by_the_models_cost() -> None:
    from dataclasses import replace

    from bot.classifier.cues import default_cues

    model = load_model()
    text = "@AcmeTel the app shows my balance as zero since this morning"
    scores = Classifier(model, default_cues()).classify(text).scores
    others = max(p for label, p in scores.items() if label != "complaint")
    tilted = Classifier(replace(model, complaint_cost=2 * others / scores["complaint"]), default_cues())
    level = Classifier(replace(model, complaint_cost=0.5 * others / scores["complaint"]), default_cues())
    assert tilted.classify(text).situation == "complaint"
    assert level.classify(text).situation != "complaint"
    assert tilted.classify(text).confidence == scores["complaint"]  # the confidence stays the probability


def test_a_rewritten_model_file_is_read_again(tmp_path: Path) -> None:
    from dataclasses import replace

    from bot.classifier.model import save_model

    path = tmp_path / "model.json"
    save_model(replace(load_model(), complaint_cost=2.0), path)
    assert load_model(path).complaint_cost == 2.0
    assert load_model(path) is load_model(path)  # parsed once while unchanged
    save_model(replace(load_model(), complaint_cost=2.25), path)  # as `carebot train` would
    assert load_model(path).complaint_cost == 2.25


def test_shipped_model_was_trained_on_the_project_examples() -> None:
    info = load_model().info
    assert info["brand_examples"] == 0
    assert set(info["by_lang"]) == {"en", "ru", "id", "ar"}
    assert all(info["by_label"][label] >= 50 for label in SITUATIONS)


# Praise said with irony markers: the issue's two cases and more, in the four languages.
SARCASM = [
    "ага, спасибо за «быструю» доставку, всего-то месяц ждал",
    "شكرا على التوصيل السريع جدا… بعد شهر وصل الطلب 😒",
    "@AcmeTel wow, thanks for the super fast delivery, only took three weeks 🙄",
    "@AcmeTel yeah right, best service ever, my parcel is still 'on its way'",
    "@AcmeTel makasih lho min, paketnya nyampe sebulan, cepet banget ya",
    "@AcmeTel terima kasih loh atas pelayanannya yang luar biasa, udah 3 hari internet mati",
    "@AcmeTel ну спасибо, очень оперативно, интернет починили через неделю",
    "@AcmeTel браво, лучший провайдер, опять нет связи 👏",
    "@AcmeTel يا سلام على الخدمة الممتازة، النت مقطوع من يومين",
    "@AcmeTel ما شاء الله عليكم، سرعة البرق، الشحنة وصلت بعد اسبوعين",
]


@pytest.mark.parametrize("text", SARCASM)
def test_sarcastic_praise_is_never_thanked_automatically(classifier: Classifier, text: str) -> None:
    from bot.classifier.classify import decides_alone

    result = classifier.classify(text)
    assert result.sarcastic
    assert not (result.situation == "other" and decides_alone(result, 0.0))


@pytest.mark.parametrize(
    "text",
    [
        "@AcmeTel thank you so much, the new app is great!",
        "@AcmeTel shoutout to the technician who came today, friendly and quick",
        "@AcmeTel спасибо, всё отлично работает!",
        "@AcmeTel благодарю сотрудницу отделения на Садовой, всё объяснила и помогла",
        "@AcmeTel makasih banyak min, pelayanannya ramah banget",
        "@AcmeTel mantap, sinyal di kampung sekarang kenceng banget",
        "@AcmeTel شكرا لكم على الخدمة الممتازة، الله يعطيكم العافية",
        "@AcmeTel الموظف في الفرع كان محترم جدا وخلص طلبي بسرعة",
    ],
)
def test_plain_praise_is_not_a_complaint_and_not_sarcasm(classifier: Classifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.situation == "other"
    assert not result.sarcastic and result.doubt is None


@pytest.mark.parametrize(
    ("text", "not_expected"),
    [
        ("@AcmeTel just switched to your fibre plan today, let's see how it goes", "complaint"),
        ("@AcmeTel ваша новая реклама с котом лучшая в этом году 😂", "complaint"),
        ("@AcmeTel selamat ulang tahun yang ke 20, semoga makin jaya", "complaint"),
        ("@AcmeTel رمضان كريم وكل عام وانتم بخير", "complaint"),
        ("@AcmeTel why is the unlimited plan £10 more for existing customers than new ones?", "complaint"),
        ("@AcmeTel почему безлимит у вас дороже, чем у всех остальных?", "complaint"),
        ("@AcmeTel harga paket naik lagi? mahal banget dibanding provider sebelah", "complaint"),
        ("@AcmeTel ليش اسعار الباقات عندكم غالية مقارنة بالشركات الثانية؟", "complaint"),
        ("@USER shut your mouth you absolute clown 🤡", "complaint"),
        ("@USER заткнись уже, никому не интересно твоё мнение", "complaint"),
        ("@USER dasar buzzer bayaran, dibayar berapa lu", "complaint"),
        ("@USER يا غبي اسكت محد سألك", "complaint"),
    ],
)
def test_praise_price_talk_and_insults_are_not_called_complaints(
    classifier: Classifier, text: str, not_expected: str
) -> None:
    assert classifier.classify(text).situation != not_expected


@pytest.mark.parametrize(
    "text",
    [
        "@AcmeTel why is the unlimited plan £10 more for existing customers than new ones?",
        "@AcmeTel почему безлимит у вас дороже, чем у всех остальных?",
        "@AcmeTel harga paket naik lagi? mahal banget dibanding provider sebelah",
        "@AcmeTel ليش اسعار الباقات عندكم غالية مقارنة بالشركات الثانية؟",
    ],
)
def test_a_frustrated_price_question_is_a_price_question(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text).situation == "price_question"


@pytest.mark.parametrize(
    "text",
    [
        "@USER shut your mouth you absolute clown 🤡",
        "@USER заткнись уже, никому не интересно твоё мнение",
        "@USER dasar buzzer bayaran, dibayar berapa lu",
        "@USER يا غبي اسكت محد سألك",
    ],
)
def test_an_insult_with_no_issue_is_trolling(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text).situation == "trolling"


def test_the_shipped_model_is_memory_mapped_and_small() -> None:
    import mmap

    from bot.classifier.model import MODEL_PATH

    base = load_model().rows
    while getattr(base, "base", None) is not None:
        base = base.base
    # Not parsed into the process: a view of the mapped file, whose pages processes share.
    assert isinstance(base, mmap.mmap) or isinstance(getattr(base, "obj", None), mmap.mmap)
    model = load_model()
    assert MODEL_PATH.stat().st_size < 20_000_000
    assert model.info["calibration"]  # chosen on measured posts; the numbers live in data/calibration.json

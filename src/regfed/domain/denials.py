"""What each denial tells the person: what happened and what to do next, in Russian.

DESIGN.md asks that every denial says what to do (finish the series, take a PCR test,
submit an application), so that fewer people need support. The texts name no window
lengths: the windows are configuration and a text must not go stale when they change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from regfed.domain.model import DenialReason


@dataclass(frozen=True, slots=True)
class DenialText:
    """The person-facing text of a denial: ``message`` (what happened), ``hint`` (what next)."""

    message: str
    hint: str


DENIAL_TEXT: Mapping[DenialReason, DenialText] = MappingProxyType(
    {
        DenialReason.NOT_FOUND: DenialText(
            message="Мы не нашли ваших данных ни в городском, ни в федеральном регистре.",
            hint=(
                "Проверьте фамилию, имя, дату рождения и номер документа. Если всё указано "
                "верно, подайте заявление на портале: мы проверим данные ещё раз и выдадим "
                "сертификат, как только они появятся."
            ),
        ),
        DenialReason.ACTIVE_ILLNESS: DenialText(
            message=(
                "По данным регистра, вы сейчас болеете COVID-19 или недавно получили "
                "положительный ПЦР-тест, поэтому сертификат пока выдать нельзя."
            ),
            hint=(
                "Выздоравливайте! Когда врач отметит выздоровление, запросите сертификат снова. "
                "Если вы уже выздоровели, обратитесь к своему врачу в поликлинике, чтобы "
                "выздоровление внесли в регистр."
            ),
        ),
        DenialReason.INCOMPLETE_VACCINATION: DenialText(
            message="Курс вакцинации не завершён: в регистре есть не все дозы вакцины.",
            hint=(
                "Завершите курс вакцинации: сертификат можно будет получить после последней "
                "дозы. Если вы уже получили все дозы, обратитесь в пункт вакцинации или "
                "поликлинику, чтобы их внесли в регистр."
            ),
        ),
        DenialReason.VACCINE_NOT_RECOGNISED: DenialText(
            message=(
                "Вакцина, которой вы привиты, не зарегистрирована в России, поэтому сертификат "
                "о вакцинации по ней не выдаётся."
            ),
            hint=(
                "Вы можете сдать ПЦР-тест и получить сертификат по его отрицательному "
                "результату или привиться вакциной, зарегистрированной в России."
            ),
        ),
        DenialReason.BASIS_EXPIRED: DenialText(
            message=(
                "Срок действия вашей вакцинации, перенесённой болезни или теста истёк, "
                "поэтому новый сертификат по ним не выдаётся."
            ),
            hint=(
                "Пройдите повторную вакцинацию или сдайте ПЦР-тест, затем запросите "
                "сертификат снова."
            ),
        ),
        DenialReason.NO_RECORDS: DenialText(
            message=(
                "Мы нашли вас в регистре, но в нём нет записей о вакцинации, перенесённой "
                "болезни или тесте, которые дают право на сертификат."
            ),
            hint=(
                "Если вы прививались, болели или сдавали тест, обратитесь в поликлинику или "
                "лабораторию, чтобы данные внесли в регистр. Можно также сдать ПЦР-тест."
            ),
        ),
    }
)


def denial_text(reason: DenialReason) -> DenialText:
    """The message and hint for a denial reason."""
    return DENIAL_TEXT[reason]


# A pending application already is the re-check that NOT_FOUND's hint offers.
_APPLICATION_NOT_FOUND_HINT = (
    "Заявление принято: мы регулярно проверяем оба регистра и выдадим сертификат, как только "
    "ваши данные появятся. Если данные в заявлении указаны с ошибкой, обратитесь в поддержку."
)


def application_denial_text(reason: DenialReason) -> DenialText:
    """The message and hint for a denial an application's check gave: as for Issue, but
    NOT_FOUND does not send someone who has applied to apply."""
    text = DENIAL_TEXT[reason]
    if reason is DenialReason.NOT_FOUND:
        return DenialText(text.message, _APPLICATION_NOT_FOUND_HINT)
    return text

"""The result's ``advice``: the engine's next steps with their words (vi and en).

:func:`nangluc.engine.advise` decides what to learn next (pure arrays); this
module only puts it into words: the criteria's learning goals and
competences from the bank, the basic skills' names from the framework, and a
few sentences for the citizen. Apps get the same advice as the citizen page,
which renders it without deciding anything itself.
"""

from __future__ import annotations

from typing import Any

from nangluc.engine import Advice
from nangluc.service.banks import LoadedBank

#: Words said around the next steps (each in Vietnamese and English).
MESSAGES: dict[str, dict[str, str]] = {
    "steps": {
        "vi": "Đây là những việc bạn đã gần làm được. Hãy tập từng việc một, bắt đầu từ lĩnh vực đầu tiên.",
        "en": "These are things you can almost do already. Practise them one at a time, starting with the first area.",
    },
    "help": {
        "vi": "Bạn có thể nhờ Tổ công nghệ số cộng đồng ở phường, xã hoặc con cháu trong nhà hướng dẫn.",
        "en": "The community digital technology team in your ward or commune, or your family, can help you.",
    },
    # {level}: the name of the framework's top level (Nâng cao / Advanced in the Đà Nẵng framework).
    "top": {
        "vi": "Bạn đã ở mức {level}, mức cao nhất của khung năng lực số.",
        "en": "You are at the {level} level, the highest level of the digital competence framework.",
    },
    "top_steps": {
        "vi": "Nếu muốn giỏi hơn nữa, đây là vài việc bạn có thể tập thêm.",
        "en": "If you want to go further, here are a few things you could still practise.",
    },
    "top_help": {
        "vi": "Tổ công nghệ số cộng đồng ở phường, xã cần những người như bạn để hướng dẫn bà con dùng điện thoại, dịch vụ công trực tuyến và tránh lừa đảo. Hãy liên hệ để cùng tham gia.",
        "en": "The community digital technology team in your ward or commune needs people like you to help neighbours use phones and online public services and avoid scams. Get in touch to join them.",
    },
    "area_top": {
        "vi": "Bạn đã ở mức cao nhất trong lĩnh vực này.",
        "en": "You are at the highest level in this area.",
    },
    "nothing": {
        "vi": "Bài kiểm tra chưa tìm thấy việc nào bạn sắp làm được; hãy làm lại bài vào dịp khác.",
        "en": "The test found nothing you are about to master yet; take it again another time.",
    },
}


def _text(value: Any, fallback: str = "") -> dict[str, str]:
    """A {"vi", "en"} text (English falls back to Vietnamese)."""
    if isinstance(value, dict):
        vi = str(value.get("vi") or value.get("en") or fallback)
        return {"vi": vi, "en": str(value.get("en") or vi)}
    text = str(value) if value else fallback
    return {"vi": text, "en": text}


def advice_payload(loaded: LoadedBank, advice: Advice) -> dict[str, Any]:
    """The API's ``advice`` object of one result (texts in Vietnamese and English)."""
    document = loaded.document
    framework = document.framework

    def area_name(code: str) -> dict[str, str]:
        return {lang: loaded.area_name(code, lang) for lang in ("vi", "en")}

    competences = {c.code: c.name for c in framework.competences} if framework else {}
    skills = {b.code: b.name for b in framework.basic_skills} if framework else {}

    def competence_name(code: str) -> dict[str, str]:
        return _text(competences.get(code, code), code)

    def basic_skill(code: str) -> dict[str, Any]:
        return {"code": code, "name": _text(skills.get(code, code), code)}

    areas = []
    for area in advice.areas:
        steps = []
        for step in area.steps:
            record = document.item(step.item_id)
            steps.append(
                {
                    "criterion": step.item_id,
                    "competence": step.competence or None,
                    "competence_name": competence_name(step.competence),
                    # A bank without learning goals names the criterion by its question.
                    "goal": _text(record.goal or record.text, step.item_id),
                    "basic_skills": [basic_skill(code) for code in step.basic_skills],
                    "success": step.success,
                }
            )
        areas.append(
            {
                "area": area.area,
                "name": area_name(area.area),
                "level": area.level,
                "top": area.top,
                "note": MESSAGES["area_top"] if area.top else None,
                "gain": area.gain,
                "steps": steps,
            }
        )
    any_steps = any(a.steps for a in advice.areas)
    if advice.top_overall:
        top = loaded.bank.scale.top
        message = {
            lang: MESSAGES["top"][lang].format(level=top.name(lang)) for lang in ("vi", "en")
        }
        more = MESSAGES["top_steps"] if any_steps else None
        help_text = MESSAGES["top_help"]
    else:
        message = MESSAGES["steps"] if any_steps else MESSAGES["nothing"]
        more = None
        help_text = MESSAGES["help"]
    return {
        "top_overall": advice.top_overall,
        "message": message,
        "more": more,
        "help": help_text,
        "areas": areas,
    }

"""Rule/keyword-based intent and service-category classifier.

No network and no model: messages (简体, 繁體 or English) are normalised (NFKC, traditional →
simplified with ``zhconv``, lower-cased) and scored against weighted regular-expression lexicons.

The codes returned are exactly those of ``handlers/data/taxonomy.json`` (a verbatim copy of the
shared taxonomy).  ``classify`` returns a :class:`Classification`; a ``category`` is only given
when the intent is ``request_service``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import zhconv

__all__ = [
    "CATEGORIES",
    "CATEGORY_LABELS",
    "INTENTS",
    "Classification",
    "classify",
    "classify_category",
    "detect_language",
    "load_taxonomy",
    "to_simplified",
]

_TAXONOMY_PATH = Path(__file__).resolve().parent / "data" / "taxonomy.json"

INTENTS: tuple[str, ...] = ("register", "activities", "hours", "request_service", "help", "other")
CATEGORIES: tuple[str, ...] = (
    "elderly",
    "disability",
    "children",
    "health",
    "legal",
    "counseling",
    "repair",
    "errands",
    "environment",
    "other",
)

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "elderly": {"zh-Hans": "助老服务", "zh-Hant": "助老服務", "en": "Elderly care"},
    "disability": {"zh-Hans": "助残服务", "zh-Hant": "助殘服務", "en": "Disability support"},
    "children": {"zh-Hans": "关爱儿童", "zh-Hant": "關愛兒童", "en": "Children & tutoring"},
    "health": {"zh-Hans": "义诊健康", "zh-Hant": "義診健康", "en": "Health & free clinics"},
    "legal": {"zh-Hans": "法律援助", "zh-Hant": "法律援助", "en": "Legal aid"},
    "counseling": {"zh-Hans": "心理关怀", "zh-Hant": "心理關懷", "en": "Counselling"},
    "repair": {"zh-Hans": "义务维修", "zh-Hant": "義務維修", "en": "Repairs"},
    "errands": {"zh-Hans": "代办代购", "zh-Hant": "代辦代購", "en": "Errands & shopping"},
    "environment": {"zh-Hans": "环境保护", "zh-Hant": "環境保護", "en": "Environment"},
    "other": {"zh-Hans": "其他求助", "zh-Hant": "其他求助", "en": "Other help"},
}


@dataclass(frozen=True, slots=True)
class Classification:
    intent: str  # one of INTENTS
    category: str | None  # one of CATEGORIES when intent == "request_service", else None
    language: str  # "zh-Hans", "zh-Hant" or "en"
    confidence: float  # 0..1, rough


@lru_cache(maxsize=1)
def _taxonomy_cached() -> dict[str, Any]:
    with _TAXONOMY_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def load_taxonomy() -> dict[str, Any]:
    """Return the bundled taxonomy (``{"intents": {...}, "categories": {...}}``); a fresh copy."""
    data = _taxonomy_cached()
    return {key: dict(value) for key, value in data.items()}


# ---------------------------------------------------------------------------------------------
# Normalisation and language detection
# ---------------------------------------------------------------------------------------------

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def to_simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified (other text is left unchanged)."""
    if not text or not _CJK_RE.search(text):
        return text
    return zhconv.convert(text, "zh-hans")


def detect_language(text: str) -> str | None:
    """Return ``"zh-Hant"``, ``"zh-Hans"`` or ``"en"``; ``None`` when there is no language signal."""
    if not text:
        return None
    han = "".join(_CJK_RE.findall(text))
    if han:
        # Compare only the Han characters: zhconv also rewrites punctuation such as 「」.
        return "zh-Hant" if zhconv.convert(han, "zh-hans") != han else "zh-Hans"
    if _LATIN_RE.search(text):
        return "en"
    return None


# Regional wording mapped onto the mainland terms used by the lexicons.
_REGIONAL = (("志工", "志愿者"), ("冷气", "空调"), ("电邮", "邮件"), ("网路", "网络"))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = to_simplified(text).lower()
    for old, new in _REGIONAL:
        text = text.replace(old, new)
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------------------------
# Lexicons.  Each entry maps a weight to regex fragments; text is already simplified + lower-case.
# Chinese fragments are plain substrings/regexes; English ones are wrapped in word boundaries.
# ---------------------------------------------------------------------------------------------

_Lexicon = dict[int, tuple[list[str], list[str]]]  # weight -> (chinese patterns, english patterns)

_INTENT_LEXICONS: dict[str, _Lexicon] = {
    "register": {
        4: (
            [
                r"注册",
                r"(?:当|做|成为|加入|申请|报名当|登记成为|登记为|注册为|注册成)[^，。,.!?？！]{0,6}(?:志愿者|义工)",
                r"加入[^，。,.!?？！]{0,6}(?:你们|我们|志愿|队伍|团队|协会|组织|服务队|队)",
                r"(?:改|修改|更改|更新|换|变更|填写|完善|补充)[^，。,.!?？！]{0,8}"
                r"(?:手机号|电话号|联系方式|号码|名字|姓名|资料|个人信息|住址|地址|技能|特长|头像|昵称|身份证)",
            ],
            [
                r"sign (?:me )?up as",
                r"register(?:ed)? as",
                r"(?:become|be|join as|joining as|enroll as|enrol as) an? (?:new )?volunteer",
                r"(?:update|change|edit|correct) my (?:phone|mobile|number|name|profile|info|information"
                r"|details|address|skills|email)",
            ],
        ),
        3: (
            [
                r"个人(?:资料|信息|档案)",
                r"手机号",
                r"电话号码",
                r"我的资料",
                r"实名",
                r"注销",
                r"退出(?:志愿者|志愿队|队伍|团队|协会)",
                r"怎么(?:成为|加入)",
                r"入队",
                r"入会",
                r"志愿者(?:队伍|团队|协会)",
            ],
            [
                r"registration",
                r"register",
                r"my profile",
                r"(?:want|like|wish) to volunteer",
                r"join (?:your|the) (?:volunteer )?(?:team|group|volunteers?|organi[sz]ation|association)",
                r"new volunteer",
            ],
        ),
        2: (
            [r"登记", r"绑定", r"申请加入"],
            [r"sign (?:me )?up", r"volunteer account", r"enrol+"],
        ),
    },
    "activities": {
        3: (
            [
                r"活动",
                r"报名",
                r"招募",
                r"(?:有|还有)(?:什么|啥|哪些)[^，。,.!?？！]{0,4}(?:可以|能)(?:参加|参与|做)",
                r"哪里(?:可以|能)(?:做志愿|当志愿|帮忙|服务|参加|参与)",
                r"怎么(?:参加|参与)",
                r"我(?:能|可以)(?:帮|做)(?:点|些)?(?:什么|啥)",
                r"签到",
                r"集合",
                r"排班",
                r"(?:有|还有)(?:什么|啥|哪些)[^，。,.!?？！]{0,6}志愿",
                r"退掉",
                r"退报",
                r"不想去了",
                r"去不了",
                r"不去了",
            ],
            [
                r"events?",
                r"activit(?:y|ies)",
                r"opportunit(?:y|ies)",
                r"sign (?:me )?up for",
                r"cancel (?:my )?(?:registration|sign-?up|spot|place|booking)",
                r"where can i (?:help|volunteer)",
                r"how can i (?:help|contribute|get involved)",
                r"get involved",
                r"volunteer (?:at|in|for|this|next|on|with|somewhere)",
                r"what'?s (?:on|happening)",
                r"upcoming",
            ],
        ),
        2: (
            [
                r"参加",
                r"参与",
                r"取消",
                r"项目",
                r"有空",
                r"有时间",
                r"敬老院帮忙",
                r"义卖",
                r"植树节",
                r"学雷锋日",
            ],
            [r"join", r"projects?", r"this (?:weekend|week)", r"withdraw", r"campaign", r"free time"],
        ),
    },
    "hours": {
        6: ([r"(?:参加|参与|服务|做)过(?:哪些|多少|几次|什么)"], [r"have i (?:joined|attended|done)"]),
        4: (
            [
                r"时长",
                r"时数",
                r"工时",
                r"(?:多少|几个?|累计|一共|总共|总计|共)[^，。,.!?？！]{0,4}小时",
                r"小时数",
                r"(?:做|参加|服务|参与)了(?:多少|几)次",
                r"(?:多少|几)次(?:志愿|服务|活动)",
                r"星级",
                r"几星",
                r"(?:几|多少)颗?星",
                r"(?:服务|志愿|我的|参加|活动)记录",
            ],
            [
                r"how many hours",
                r"my hours",
                r"hours (?:have|did|do) i",
                r"(?:volunteer|volunteering|service|served|logged) hours",
                r"star (?:level|rating)",
                r"how many stars",
                r"(?:my|service|volunteer|volunteering) (?:record|records|history)",
                r"certificate",
            ],
        ),
        3: (
            [r"证明", r"证书", r"积分", r"星志愿者", r"记录", r"[一二三四五12345]星", r"升(?:到|级|星)"],
            [r"hours", r"proof of (?:service|volunteering)", r"points", r"stars"],
        ),
    },
    "help": {
        6: (
            [
                r"^(?:帮助|使用帮助|帮助菜单|帮助信息|菜单|说明|使用说明|功能|功能列表|指令|命令|/?help|/start|/?menu|\?+)"
                r"[!.。！?？~ ]*$",
            ],
            [r"^help[!.?~ ]*$", r"^help please[!.?~ ]*$"],
        ),
        3: (
            [
                r"怎么用",
                r"如何(?:使用|用)",
                r"怎么使用",
                r"使用方法",
                r"用法",
                r"怎么操作",
                r"如何操作",
                r"点用",
                r"你们?都?(?:能|会|可以)帮?我?(?:做|干|帮)?(?:什么|啥|些什么|哪些)",
                r"(?:有|支持)(?:什么|哪些)功能",
                r"能做些什么",
                r"(?:能|会|可以)(?:做|干)(?:些)?(?:什么|啥)",
                r"是(?:干|做)(?:什么|啥)的",
                r"(?:能|可以)提供(?:什么|哪些)服务",
                r"有(?:什么|哪些)服务",
                r"教程",
                r"操作指南",
                r"查看帮助",
                r"帮助文档",
                r"怎么玩",
                r"(?:能|会|可以)(?:做|干)嘛",
                r"命令",
                r"指令",
            ],
            [
                r"what can you do",
                r"what do you do",
                r"how (?:do i|to|can i|should i) use",
                r"how does (?:this|it) work",
                r"commands?",
                r"menu",
                r"instructions",
                r"user guide",
                r"faq",
                r"what (?:services|features)",
                r"what can i do here",
            ],
        ),
    },
    "other": {
        3: (
            [
                r"^(?:你好|您好|嗨|哈喽|哈啰|hello|hi|hey|在吗|在不在|早|早安|晚安)[!.。！~ 啊呀呢]*$",
                r"^(?:好的?|嗯嗯?|哦|噢|ok|okay|收到|知道了|明白了?|行|可以|好吧|没事了?)[!.。！~ 啊呀]*$",
                r"不用了",
                r"不需要了",
            ],
            [r"^(?:ok|okay|cool|nice|great|got it|fine|sure|yes|no)[!. ]*$"],
        ),
        2: (
            [
                r"谢谢",
                r"感谢",
                r"多谢",
                r"辛苦了",
                r"唔该",
                r"再见",
                r"拜拜",
                r"(?:早上|上午|中午|下午|晚上)好",
                r"天气",
                r"哈哈",
                r"呵呵",
                r"嘿嘿",
                r"你是谁",
                r"你叫什么",
                r"吃了吗",
                r"快乐",
                r"真棒",
                r"点赞",
                r"你好",
                r"您好",
                r"在吗",
            ],
            [
                r"thanks?",
                r"thank you",
                r"thx",
                r"hello",
                r"hi",
                r"hey",
                r"good (?:morning|afternoon|evening|night)",
                r"bye",
                r"goodbye",
                r"weather",
                r"how are you",
                r"who are you",
                r"lol",
                r"haha",
            ],
        ),
    },
}

# Thanks for help already received: small talk, even though it mentions the service.
_THANKS_PAST = re.compile(
    r"(?:谢谢|感谢|多谢|thank).{0,30}(?:了|已经|for (?:helping|fixing|the help|your help|coming|visiting))"
)
_QUESTION = re.compile(r"[吗么嘛?]|能不能|可不可以|需要")

# Cues that the sender needs help (resident side).
_NEED_LEXICON: _Lexicon = {
    2: (
        [
            r"(?<!不)需要",
            r"帮我",
            r"帮帮",
            r"帮(?:他|她|我们|咱们?|俺|我家)",
            r"帮个忙",
            r"帮一下",
            r"(?:能|可以|可否|能否)(?:不能|不可以)?帮",
            r"帮忙[^，。,.!?？！]{0,6}(?:吗|么|嘛)",
            r"找(?:个|一个|几个)?人",
            r"找(?:个|一个)?志愿者",
            r"找[^，。,.!?？！]{0,4}(?:帮忙|帮手)",
            r"请(?:个|一个)?人",
            r"请(?:个|一个)?志愿者",
            r"有没有(?:人|志愿者|谁)",
            r"有人(?:能|会|可以)",
            r"谁(?:能|会|可以)",
            r"求助",
            r"救命",
            r"求救",
            r"求帮",
            r"麻烦",
            r"希望有人",
            r"希望志愿者",
            r"想请",
            r"揾人",
            r"怎么办",
            r"不知道(?:该|要)?怎么",
            r"怎么(?:协调|处理|解决)",
            r"希望(?:有人|志愿者|你们|社区)",
            r"没人(?:管|照顾|照看|帮|陪)",
            r"出不了门",
            r"出不去",
            r"下不了楼",
            r"不会(?:修|弄|用|搞)",
        ],
        [
            r"needs? (?:help|someone|somebody|a volunteer|volunteers|assistance|support)",
            r"help (?:me|my|us|him|her|them)",
            r"(?:can|could|would) (?:you|someone|somebody|anyone|anybody|a volunteer) "
            r"(?:please )?(?:help|come|fix|repair|buy|visit|pick|bring|deliver|check|clean|talk)",
            r"please help",
            r"is there (?:anyone|anybody|someone|somebody|a volunteer)",
            r"looking for (?:someone|somebody|help|a volunteer)",
            r"request (?:help|a service|service)",
            r"assistance",
            r"(?:can't|cannot|can not) (?:go out|leave|get out|walk)",
            r"nobody (?:to|can|will)",
        ],
    ),
    1: (
        [r"上门", r"急", r"求求", r"帮忙", r"帮助", r"不方便"],
        [r"help", r"need", r"urgent", r"please"],
    ),
}

# Volunteer-side cues: the sender wants to help somewhere -> activities.
_VOLUNTEER_CUE = re.compile(
    r"(?:我们?也?(?:想|要|愿意|可以|希望|打算|准备)|(?<![我们也])也?(?:想|愿意|打算|准备))"
    r"(?:去|到|为|给|来)(?!我)[^，。,.!?？！；;找请]{0,10}"
    r"(?:帮忙|帮助|服务|做志愿|当志愿|献爱心|出力|出份力|贡献|做点|做些|义务|陪|看望|探望|慰问|捡垃圾|植树|种树|打扫|支教)"
    r"|我们?也?(?:想|要|愿意|可以|希望|打算)(?:帮忙|帮助|服务|献爱心|出份力|贡献|做点|做些)(?!我|一下我)"
    r"|\bi(?:'d| would)? (?:want|like|wish|love) to (?:help|volunteer) (?:at|with|out|in|the|some|on)\b"
    r"|(?:参加|参与|报名)(?!过|当|成为|做|注册)"
    r"|(?<!人)(?:可以|能|我)(?:去|来)帮忙(?![吗么嘛])"
    r"|我们?也?(?:能|可以)帮(?:忙|上忙|什么忙|点忙)"
    r"|我(?:会|懂|擅长)[^，。,.!?？！；;]{1,10}[，,]?\s*(?:想|愿意|可以|能)(?:帮|为|给|去)"
    r"|缺(?:人|人手|志愿者)|需要(?:志愿者|人手|帮手)(?:吗|么|嘛)|招(?:募)?志愿者|我也?想去[!！。.~]*$"
    r"|\b(?:join|joining|take part in|participate in|attend|attending) (?:the|a|an|this|that|tomorrow's)\b"
)
# A volunteer cue is ignored when the sender is clearly looking for someone to help them.
_SEEKING = re.compile(
    r"找(?:个|一个|几个)?人|请(?:个|一个)?人|有没有人|谁能|\b(?:need|needs) (?:someone|somebody)\b"
)

_CATEGORY_LEXICONS: dict[str, _Lexicon] = {
    "elderly": {
        3: (
            [
                r"独居",
                r"空巢",
                r"孤寡",
                r"一个人(?:住|生活|在家)",
                r"独自(?:生活|一人|在家|住)",
                r"敬老院",
                r"养老院",
                r"老年(?:痴呆|餐|食堂|大学|活动中心)",
                r"失能",
                r"阿尔茨海默",
                r"失智",
                r"痴呆",
                r"认知症",
                r"陪聊",
                r"陪[^，。,.!?？！]{0,3}(?:聊天|聊聊|说说话|说话|唠嗑|解闷|散步)",
                r"理发",
                r"剪(?:个)?头发",
                r"助浴",
                r"助餐",
                r"送饭",
            ],
            [
                r"elderly",
                r"seniors?",
                r"old (?:man|woman|lady|people|person|folks)",
                r"lives? alone",
                r"living alone",
                r"nursing home",
                r"care home",
                r"haircut",
                r"keep (?:him|her|them) company",
                r"companionship",
                r"dementia",
                r"alzheimer'?s?",
            ],
        ),
        2: (
            [
                r"老人",
                r"老年",
                r"老大爷",
                r"老奶奶",
                r"老太太",
                r"老爷子",
                r"老伴",
                r"爷爷",
                r"奶奶",
                r"外公",
                r"外婆",
                r"姥姥",
                r"姥爷",
                r"阿嬷",
                r"阿公",
                r"高龄",
                r"[七八九]十(?:多)?岁",
                r"送餐",
                r"探望",
                r"看望",
                r"探访",
                r"洗澡",
                r"做饭",
                r"腿脚",
            ],
            [
                r"grand(?:ma|mother|pa|father|parents?)",
                r"granny",
                r"grandpa",
                r"aged",
                r"old",
                r"visit (?:her|him|them)",
                r"meals? on wheels",
            ],
        ),
        1: (
            [r"长辈", r"大爷", r"大妈", r"老母亲", r"老父亲", r"孤独", r"照顾"],
            [r"lonely", r"care for", r"look after"],
        ),
    },
    "disability": {
        3: (
            [
                r"残疾",
                r"残障",
                r"残联",
                r"轮椅",
                r"盲人",
                r"视障",
                r"失明",
                r"聋",
                r"哑",
                r"听障",
                r"智障",
                r"智力障碍",
                r"自闭症",
                r"孤独症",
                r"脑瘫",
                r"截肢",
                r"假肢",
                r"康复",
                r"无障碍",
                r"盲道",
                r"坡道",
                r"手语",
                r"助听器",
                r"瘫痪",
                r"唐氏",
            ],
            [
                r"disab(?:led|ility|ilities)",
                r"wheelchairs?",
                r"blind",
                r"deaf",
                r"visually impaired",
                r"hearing impaired",
                r"sign language",
                r"rehab(?:ilitation)?",
                r"accessib(?:le|ility)",
                r"ramps?",
                r"prosthe(?:tic|sis)",
                r"paraly[sz]ed",
                r"autis(?:m|tic)",
                r"cerebral palsy",
                r"crutch(?:es)?",
                r"hearing aid",
            ],
        ),
        2: (
            [r"台阶", r"拐杖", r"看不见", r"听不见", r"腿脚不便", r"行动不便", r"就业"],
            [r"can't (?:see|hear|walk)", r"mobility"],
        ),
    },
    "children": {
        3: (
            [
                r"留守",
                r"儿童",
                r"作业",
                r"辅导",
                r"功课",
                r"补课",
                r"家教",
                r"托管",
                r"课业",
                r"流动儿童",
                r"随迁子女",
                r"(?:务工|打工)(?:人员)?子女",
                r"陪读",
                r"看孩子",
                r"照看孩子",
                r"带孩子",
                r"(?:接送|接)孩子",
                r"绘本",
            ],
            [
                r"kids?",
                r"child(?:ren)?",
                r"homework",
                r"tutor(?:ing|s)?",
                r"left-?behind",
                r"after-?school",
                r"babysit(?:ting|ter)?",
                r"schoolwork",
            ],
        ),
        2: (
            [
                r"孩子",
                r"小孩",
                r"小朋友",
                r"娃",
                r"学生",
                r"小学",
                r"初中",
                r"幼儿园",
                r"放学",
                r"数学",
                r"英语",
                r"语文",
                r"学习",
            ],
            [r"son", r"daughter", r"school", r"study", r"students?", r"math", r"english", r"reading"],
        ),
    },
    "health": {
        3: (
            [
                r"血压",
                r"血糖",
                r"体检",
                r"义诊",
                r"看病",
                r"医生",
                r"大夫",
                r"护士",
                r"生病",
                r"病了",
                r"发烧",
                r"头疼",
                r"头痛",
                r"不舒服",
                r"健康",
                r"检查身体",
                r"慢性病",
                r"糖尿病",
                r"心脏",
                r"中医",
                r"针灸",
                r"理疗",
                r"急救",
                r"就医",
                r"挂号",
                r"问诊",
                r"疫苗",
                r"打针",
                r"量体温",
                r"诊所",
                r"卫生院",
                r"卫生服务",
            ],
            [
                r"blood (?:pressure|sugar|test)",
                r"diabet(?:es|ic)",
                r"check-?ups?",
                r"doctors?",
                r"nurses?",
                r"clinics?",
                r"health(?:y|care)?",
                r"sick",
                r"ill",
                r"illness",
                r"fever",
                r"medical",
                r"first aid",
                r"vaccin(?:e|ation)",
            ],
        ),
        2: (
            [r"医院", r"疼", r"痛", r"病", r"咳嗽", r"感冒", r"药"],
            [r"hospital", r"pain", r"hurts?", r"cough", r"flu"],
        ),
    },
    "legal": {
        3: (
            [
                r"法律",
                r"律师",
                r"法援",
                r"纠纷",
                r"赔偿",
                r"维权",
                r"合同",
                r"欠薪",
                r"拖欠",
                r"(?:工资|薪水|工钱)[^，。,.!?？！]{0,4}(?:不给|不发|没发|没给|要不回)",
                r"(?:不给|不发|没发|没给)[^，。,.!?？！]{0,3}(?:工资|工钱)",
                r"工伤",
                r"起诉",
                r"官司",
                r"诉讼",
                r"法院",
                r"仲裁",
                r"劳动争议",
                r"押金",
                r"遗产",
                r"继承",
                r"离婚",
                r"抚养费",
                r"赡养费",
                r"诈骗",
                r"被骗",
                r"骗了",
                r"侵权",
                r"违法",
                r"欠钱",
                r"借钱不还",
                r"债务",
                r"权益",
                r"房东",
            ],
            [
                r"legal",
                r"lawyers?",
                r"attorney",
                r"lawsuit",
                r"sue",
                r"court",
                r"disputes?",
                r"contract",
                r"compensation",
                r"unpaid (?:wages|salary)",
                r"(?:hasn't|haven't|didn't|won't|refuses? to|not) (?:been )?pa(?:id|y)",
                r"salary",
                r"wages?",
                r"landlord",
                r"deposit",
                r"scam(?:med)?",
                r"fraud",
                r"my rights",
                r"divorce",
                r"inheritance",
                r"law",
            ],
        ),
        2: (
            [r"投诉", r"报警", r"物业", r"欠"],
            [r"owes?", r"complaint"],
        ),
    },
    "counseling": {
        3: (
            [
                r"心理",
                r"心情",
                r"抑郁",
                r"焦虑",
                r"矛盾",
                r"开导",
                r"想不开",
                r"情绪",
                r"婆媳",
                r"吵架",
                r"倾诉",
                r"疏导",
                r"谈心",
                r"自杀",
                r"轻生",
                r"崩溃",
                r"绝望",
                r"郁闷",
                r"失恋",
                r"调解",
                r"协调",
                r"叛逆",
                r"关系(?:不好|紧张|很差|不和)",
                r"处不来",
                r"压力",
                r"沉迷",
                r"网瘾",
                r"厌学",
                r"心里(?:难受|不舒服|苦|烦)",
            ],
            [
                r"depress(?:ed|ion)",
                r"anxi(?:ous|ety)",
                r"stress(?:ed|ful)?",
                r"sad",
                r"upset",
                r"mental",
                r"psycholog(?:ical|ist|y)",
                r"counsel+(?:ing|or|lor)?",
                r"therap(?:y|ist)",
                r"talk to (?:someone|somebody)",
                r"conflicts?",
                r"arguments?",
                r"fight(?:ing)? with",
                r"mood",
                r"suicid(?:e|al)",
                r"emotional",
            ],
        ),
        2: (
            [
                r"难过",
                r"伤心",
                r"烦",
                r"吵",
                r"失眠",
                r"睡不着",
                r"说说话?",
                r"孤单",
                r"儿媳",
                r"媳妇",
                r"夫妻",
                r"邻里",
                r"家庭关系",
                r"聊聊",
                r"沟通",
            ],
            [r"lonely", r"unhappy", r"can't sleep", r"insomnia"],
        ),
    },
    "repair": {
        3: (
            [
                r"维修",
                r"修理",
                r"修(?!改|订|正|养|建|行|辞|饰|炼|复关系)",
                r"坏了",
                r"坏掉",
                r"坏咗",
                r"不(?:制冷|制热|出水|出热水|工作|好使|灵|通电|充电|出声|显示)",
                r"失灵",
                r"不亮",
                r"不转",
                r"不响",
                r"打不开",
                r"开不了机",
                r"开不开",
                r"不能用",
                r"用不了",
                r"没反应",
                r"故障",
                r"漏水",
                r"滴水",
                r"关不(?:紧|上|住)",
                r"漏电",
                r"堵(?:了|住)",
                r"跳闸",
                r"换灯泡",
                r"没信号",
                r"上不了网",
                r"连不上",
            ],
            [
                r"repair(?:s|ing)?",
                r"fix(?:ing|ed)?",
                r"broken",
                r"(?:not|isn't|doesn't|won't|stopped) (?:working|work|turn(?:ing)? on|start)",
                r"leak(?:s|ing|y)?",
                r"clogged",
                r"blocked",
            ],
        ),
        1: (
            [
                r"水管",
                r"水龙头",
                r"马桶",
                r"下水道",
                r"灯泡",
                r"台灯",
                r"电灯",
                r"灯",
                r"电视",
                r"冰箱",
                r"洗衣机",
                r"空调",
                r"热水器",
                r"微波炉",
                r"电饭(?:煲|锅)",
                r"电脑",
                r"手机(?!号)",
                r"路由器",
                r"网络",
                r"网路",
                r"宽带",
                r"wifi",
                r"插座",
                r"电线(?!杆)",
                r"门锁",
                r"锁",
                r"窗户",
                r"家电",
                r"电器",
                r"自行车",
                r"电动车",
                r"轮胎",
                r"安装",
            ],
            [
                r"pipes?",
                r"faucet",
                r"tap",
                r"toilet",
                r"light ?bulbs?",
                r"lamp",
                r"lights?",
                r"tv",
                r"television",
                r"fridge",
                r"refrigerator",
                r"washing machine",
                r"washer",
                r"air ?con(?:ditioner)?",
                r"heater",
                r"computer",
                r"laptop",
                r"phone",
                r"router",
                r"internet",
                r"bike",
                r"bicycle",
                r"lock",
                r"window",
                r"appliances?",
                r"install",
            ],
        ),
    },
    "errands": {
        3: (
            [
                r"买菜",
                r"代购",
                r"代买",
                r"买(?:点|些|一些)?(?:东西|菜|米|面|油|水果|药|日用品|生活用品)",
                r"帮(?:我|忙|她|他)?买",
                r"取药",
                r"拿药",
                r"配药",
                r"开药",
                r"买药",
                r"跑腿",
                r"快递",
                r"代办",
                r"代缴",
                r"缴费",
                r"交(?:水|电|燃气|煤气|话|物业)费",
                r"送(?:上来|上楼|过来|到家|回家|货|米|水|菜)",
                r"扛",
                r"超市",
                r"外卖",
                r"排队",
                r"办手续",
            ],
            [
                r"groceries",
                r"grocery",
                r"shopping",
                r"errands?",
                r"pick up (?:my |some |the )?(?:medicine|medication|prescription|parcel|package)",
                r"prescription",
                r"pharmacy",
                r"deliver(?:y|ed)?",
                r"parcels?",
                r"packages?",
                r"pay (?:my |the )?bills?",
                r"buy",
            ],
        ),
        2: (
            [r"送", r"买", r"取(?!消)", r"寄", r"领", r"银行", r"带(?:点|些)?东西"],
            [r"medicine", r"medication", r"food", r"bring", r"pick up", r"collect"],
        ),
    },
    "environment": {
        3: (
            [
                r"垃圾",
                r"清理",
                r"清扫",
                r"清洁",
                r"卫生(?!院|服务)",
                r"小广告",
                r"牛皮癣",
                r"涂鸦",
                r"乱贴",
                r"乱画",
                r"绿化",
                r"植树",
                r"种树",
                r"草坪",
                r"花坛",
                r"河道",
                r"河边",
                r"湖边",
                r"污染",
                r"异味",
                r"积水",
                r"杂草",
                r"除草",
                r"补种",
                r"落叶",
                r"环保",
                r"环境",
                r"杂物",
                r"乱堆",
                r"乱放",
                r"乱停",
                r"狗屎",
                r"粪便",
                r"污水",
                r"臭",
                r"脏",
            ],
            [
                r"litter(?:ing)?",
                r"trash",
                r"garbage",
                r"rubbish",
                r"clean ?up",
                r"cleaning",
                r"dirty",
                r"graffiti",
                r"posters?",
                r"flyers?",
                r"green(?:ing|ery)?",
                r"(?:plant(?:ing)?|planting) trees?",
                r"tree planting",
                r"river",
                r"pollut(?:ion|ed)",
                r"smell(?:s|y)?",
                r"environment(?:al)?",
                r"recycl(?:e|ing)",
                r"weeds?",
            ],
        ),
        2: (
            [r"楼道", r"街道", r"公共区域", r"小区", r"蚊", r"老鼠", r"噪音", r"河", r"树"],
            [r"park", r"street", r"stairwell", r"trees?"],
        ),
    },
}

# Tie-break order (earlier wins on equal score).  Specific categories beat context words like 老人.
_CATEGORY_PRIORITY: tuple[str, ...] = (
    "disability",
    "health",
    "legal",
    "counseling",
    "environment",
    "repair",
    "errands",
    "children",
    "elderly",
)
_INTENT_PRIORITY: tuple[str, ...] = ("hours", "register", "activities", "request_service", "help", "other")

_Compiled = list[tuple[int, re.Pattern[str]]]


def _compile(lexicon: _Lexicon) -> _Compiled:
    compiled: _Compiled = []
    for weight, (zh, en) in lexicon.items():
        parts = [f"(?:{p})" for p in zh] + [rf"\b(?:{p})\b" for p in en]
        if parts:
            compiled.append((weight, re.compile("|".join(parts))))
    return compiled


_INTENT_RES: dict[str, _Compiled] = {name: _compile(lex) for name, lex in _INTENT_LEXICONS.items()}
_NEED_RES: _Compiled = _compile(_NEED_LEXICON)
_CATEGORY_RES: dict[str, _Compiled] = {name: _compile(lex) for name, lex in _CATEGORY_LEXICONS.items()}


def _score(compiled: _Compiled, text: str) -> int:
    total = 0
    for weight, pattern in compiled:
        hits = {m.group(0) for m in pattern.finditer(text)}
        total += weight * len(hits)
    return total


def _category_scores(norm: str) -> dict[str, int]:
    return {name: _score(res, norm) for name, res in _CATEGORY_RES.items()}


def _best_category(scores: dict[str, int]) -> tuple[str, int]:
    best, best_score = "other", 0
    for name in _CATEGORY_PRIORITY:
        if scores[name] > best_score:
            best, best_score = name, scores[name]
    return best, best_score


def classify_category(text: str) -> str:
    """Best service category for a text already known to be a request (``"other"`` if none)."""
    return _best_category(_category_scores(_normalise(text)))[0]


def _confidence(top: int, second: int) -> float:
    if top <= 0:
        return 0.3
    margin = (top - second) / top
    strength = min(top, 8) / 8
    return round(min(0.99, 0.35 + 0.35 * margin + 0.3 * strength), 2)


def classify(text: str) -> Classification:
    """Classify one message into an intent (and a category for ``request_service``)."""
    language = detect_language(text) or "zh-Hans"
    norm = _normalise(text)
    if not norm:
        return Classification("other", None, language, 0.3)

    scores = {name: _score(res, norm) for name, res in _INTENT_RES.items()}
    cat_scores = _category_scores(norm)
    category, cat_score = _best_category(cat_scores)
    need = _score(_NEED_RES, norm)

    if _VOLUNTEER_CUE.search(norm) and not _SEEKING.search(norm):
        scores["activities"] += 4
        need = max(0, need - 2)
        cat_score = min(cat_score, 1)

    if _THANKS_PAST.search(norm) and not _QUESTION.search(norm):
        scores["other"] += 5

    request = need + min(cat_score, 4)
    # Context words alone ("孩子", "老人") are not a request; a need cue or a strong keyword is.
    scores["request_service"] = request if (need > 0 and request >= 2) or cat_score >= 3 else 0

    ranked = sorted(_INTENT_PRIORITY, key=lambda name: (-scores[name], _INTENT_PRIORITY.index(name)))
    intent = ranked[0]
    top, second = scores[intent], scores[ranked[1]]
    if top <= 0:
        return Classification("other", None, language, 0.3)
    return Classification(
        intent,
        category if intent == "request_service" else None,
        language,
        _confidence(top, second),
    )

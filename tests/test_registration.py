"""实名注册 through the console channel, end to end."""

from __future__ import annotations

from sqlalchemy import text

from handlers.engine import Engine
from handlers.privacy import FieldCipher
from tests.conftest import TEST_KEY
from tests.helpers import adult_id, person_of, register


async def test_full_registration_saves_encrypted_id_and_masks_it(console, sessions) -> None:
    alice = console("alice")
    first = await alice.send("我想注册成为志愿者")
    assert "实名" in first and "姓名" in first
    assert "身份证号" in await alice.send("王小丽")
    assert "手机号" in await alice.send(adult_id())
    skills = await alice.send("+86 138-0013-8000")
    assert "1. 助老陪伴" in skills
    assert "社区" in await alice.send("1,3")
    summary = await alice.send("花家地社区")
    assert "1101**********" in summary and "138****8000" in summary and "助老陪伴、儿童辅导" in summary
    assert adult_id() not in summary
    done = await alice.send("1")
    assert "注册成功" in done and "王小丽" in done

    person = await person_of(sessions, "console", "alice")
    assert person.status == "active" and person.area == "花家地社区" and person.skills == "elderly,tutoring"
    assert person.id_number_masked == adult_id()[:4] + "*" * 10 + adult_id()[-4:]
    assert FieldCipher(TEST_KEY).decrypt(person.id_number_enc) == adult_id()
    assert FieldCipher(TEST_KEY).decrypt(person.phone_enc) == "13800138000"
    # the plain ID number and phone appear nowhere in the stored rows (dialog state included)
    async with sessions() as session:
        for table in ("person", "dialog_state"):
            dump = str((await session.exec(text(f"SELECT * FROM {table}"))).all())
            assert adult_id() not in dump and "13800138000" not in dump


async def test_wrong_id_number_gets_a_specific_message_and_the_same_question(console) -> None:
    bob = console("bob")
    await bob.send("注册")
    await bob.send("李雷")
    bad_check = adult_id()[:-1] + ("0" if adult_id()[-1] != "0" else "1")
    reply = await bob.send(bad_check)
    assert "校验位" in reply and "请输入 18 位身份证号" in reply
    reply = await bob.send("12345")
    assert "18 位" in reply and "请输入 18 位身份证号" in reply
    reply = await bob.send("110101900307123")
    assert "15 位" in reply
    # full-width digits are accepted
    full_width = adult_id().translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert "手机号" in await bob.send(full_width)
    assert "11 位" in await bob.send("12345678901")
    assert "技能" in await bob.send("138 0013 8000")


async def test_minor_needs_guardian_and_child_is_refused_kindly(console, sessions) -> None:
    teen = console("teen")
    await teen.send("注册")
    await teen.send("小明")
    reply = await teen.send(adult_id(birth="20100101"))  # 16 on 2026-03-01
    assert "监护人" in reply
    await teen.send("明爸爸")
    assert "11 位" in await teen.send("123")
    reply = await teen.send("13900139000")
    assert "手机号" in reply  # then the volunteer's own phone
    await teen.send("13700137000")
    await teen.send("2")
    summary = await teen.send("幸福社区")
    assert "监护人：明爸爸" in summary
    assert "注册成功" in await teen.send("确认提交")
    person = await person_of(sessions, "console", "teen")
    assert person.guardian_name == "明爸爸" and person.guardian_phone_enc
    assert person.birth_year == 2010  # only the year is stored
    # editing the profile still knows a minor (the age comes from the encrypted ID number)
    await teen.send("我的资料")
    assert "监护人" in await teen.send("1")  # 修改资料
    await teen.send("取消")

    kid = console("kid")
    await kid.send("注册")
    await kid.send("小红")
    reply = await kid.send(adult_id(birth="20150601"))
    assert "未满 14 周岁" in reply and "亲子" in reply
    assert (await person_of(sessions, "console", "kid")).status == "guest"


async def test_confirmation_can_edit_a_field_then_save(console, sessions) -> None:
    carol = console("carol")
    await carol.send("注册")
    for answer in ("赵六", adult_id(7), "13600136000", "5", "望京社区"):
        await carol.send(answer)
    assert "要修改哪一项" in await carol.send("修改")
    assert "社区" in await carol.send("5")
    summary = await carol.send("酒仙桥社区")
    assert "社区：酒仙桥社区" in summary and "确认提交" in summary
    await carol.send("1")
    assert (await person_of(sessions, "console", "carol")).area == "酒仙桥社区"


async def test_profile_edit_and_withdraw_deletes_personal_data(console, sessions) -> None:
    dave = console("dave")
    await register(dave, "钱七", serial=8)
    profile = await dave.send("我的资料")
    assert "钱七" in profile and "138****8000" in profile
    await dave.send("修改资料")
    await dave.send("手机号")
    assert "资料已更新" in (await dave.send("13911112222") and await dave.send("确认提交"))
    assert (await person_of(sessions, "console", "dave")).phone_masked == "139****2222"
    assert "确定要退出" in await dave.send("退出志愿者")
    assert "已退出" in await dave.send("1")
    person = await person_of(sessions, "console", "dave")
    assert person.status == "withdrawn" and person.id_number_enc is None and person.phone_enc is None
    assert person.name == "钱七"  # the ledger keeps who served


async def test_same_id_number_cannot_register_twice(console) -> None:
    await register(console("erin"), "孙八", serial=9)
    reply = await register(console("frank"), "孙八", serial=9)
    # the answer does not tell a stranger that this ID number is registered, and says where to get help
    assert "无法用于注册" in reply and "协调员" in reply
    assert "注册过" not in reply and "已注册" not in reply


async def test_dialog_survives_a_restart(console, sessions, options, clock) -> None:
    grace = console("grace")
    await grace.send("注册")
    await grace.send("周九")
    # a new process: a new engine on the same database continues the same dialog
    from bot.channels.console import ConsoleChannel

    restarted = ConsoleChannel(Engine(sessions, options, clock=clock), user="grace")
    assert "手机号" in await restarted.send(adult_id(10))


async def test_cancel_leaves_the_dialog(console) -> None:
    henry = console("henry")
    await henry.send("注册")
    assert "已取消" in await henry.send("取消")
    assert "志愿助手" in await henry.send("帮助")


async def test_traditional_and_english_get_answers_in_their_language(console) -> None:
    assert "註冊" in await console("tw").send("我想註冊志願者")
    reply = await console("en").send("sign me up as a volunteer")
    assert "real name" in reply and "Please enter your full legal name" in reply


async def test_skills_and_summary_come_from_the_catalogs(console) -> None:
    tw = console("tw2")
    await tw.send("我想註冊志願者")
    await tw.send("王小麗")
    await tw.send(adult_id(21))
    assert "2. 助殘服務" in await tw.send("13800138000")  # 繁體 from the catalog, not a conversion

    en = console("en2")
    await en.send("sign me up as a volunteer")
    await en.send("Alice Wang")
    await en.send(adult_id(22))
    assert "1. Elderly companionship" in await en.send("13800138000")
    await en.send("1,3")
    summary = await en.send("Huajiadi community")
    assert "Name: Alice Wang" in summary and "Mobile: 138****8000" in summary
    assert "Skills: Elderly companionship、Tutoring children" in summary


async def test_changing_the_guardian_asks_their_phone_again(console, sessions) -> None:
    teen = console("teen2")
    for answer in ("注册", "小刚", adult_id(23, birth="20100101"), "刚妈妈", "13900139000", "13700137000", "2"):
        await teen.send(answer)
    assert "监护人：刚妈妈（139****9000）" in await teen.send("幸福社区")
    assert "监护人" in await teen.send("修改")
    assert "监护人" in await teen.send("监护人")
    assert "监护人手机号" in await teen.send("刚爸爸")
    summary = await teen.send("13500135000")
    assert "监护人：刚爸爸（135****5000）" in summary
    assert "注册成功" in await teen.send("确认提交")
    person = await person_of(sessions, "console", "teen2")
    assert person.guardian_name == "刚爸爸"

"""Safe Exam Browser: request hashes, the JavaScript-API nonce path, Config Keys, .seb files.

Known answers come from outside cbt.seb: hex constants computed with the
shell (``printf '%s' "$URL$KEY" | sha256sum``), a second, plain
implementation of SEB-JSON in this file, and a Config Key from Moodle's tests
(see MAC_001_JSON).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import plistlib

import pytest
from support.accounts import login
from support.delivery import sign_in

from cbt import seb
from cbt.platform.app import create_app

# printf 'ck' | sha256sum ; printf 'bek' | sha256sum
CK = "d93beca6efd0421b314c081066064ac0e371b306f715cc0935b2879e249ba9df"
BEK = "3c8e94f6eaf41765bbe8c6aa717b07307acf209a93163df199fc7a4d6c9719cd"
PUBLIC = "https://thi.example.edu.vn"
URL = "https://thi.example.edu.vn/exam/DEMO/attempt?q=3"

# printf '%s' "$URL$KEY" | sha256sum
VECTORS = [
    (URL, CK, "fbce22b1be9bb0f9686df978fe1b65065b3c44fe33683b132a3241e5870a4495"),
    (
        "http://thi.example.edu.vn/exam/DEMO/attempt?q=3",
        CK,
        "1762971c73a754a5d594903ea661a98571d345574e23160f45b2963de1de68f8",
    ),
    (
        "https://thi.example.edu.vn/exam/DEMO/attempt/?q=3",
        CK,
        "583ccb41c92e3ab8c26226fd082ba6c9377c7013d8e2b97dcf1e93f74b8f1b42",
    ),
    ("https://www.safeexambrowser.org/exams", BEK, "85286a253096028e506dfd74fe5d2efde760cf98cd191f60f84014fe12faea32"),
    ("https://thi.example.edu.vn/thi/Đề?x=1", CK, "293f5cf69587474e80657a3cb1476d255adcbb95b3be1d5bb179f1834f829ce9"),
]


# --------------------------------------------------------------------------- request hash


@pytest.mark.parametrize(("url", "key", "want"), VECTORS)
def test_request_hash_known_answers(url, key, want):
    assert seb.request_hash(url, key) == want
    assert hashlib.sha256((url + key).encode()).hexdigest() == want  # the vector itself is right
    assert seb.request_hash(url + "#question-4", key) == want  # the fragment is not hashed


def test_url_comes_before_key():
    assert seb.request_hash(URL, CK) != hashlib.sha256((CK + URL).encode()).hexdigest()


def test_absolute_url_uses_public_url_not_host():
    assert seb.absolute_url(PUBLIC, "/exam/DEMO/attempt?q=3") == URL
    assert seb.absolute_url(PUBLIC + "/", "/exam/DEMO/attempt?q=3#x") == URL
    assert seb.absolute_url("HTTPS://Thi.Example.edu.vn:443", "/a") == "https://thi.example.edu.vn/a"
    assert seb.absolute_url("http://h.vn:8080", "/a") == "http://h.vn:8080/a"
    assert seb.absolute_url("https://h.vn/cbt/", "/a?b=1") == "https://h.vn/cbt/a?b=1"
    assert seb.absolute_url("http://[2001:db8::1]:8080", "/a") == "http://[2001:db8::1]:8080/a"

    class Req:  # what aiohttp gives: raw_path = path + query as sent, percent-encoding untouched
        raw_path = "/exam/DEMO/attempt?q=3"
        host = "evil.example"  # never used

    assert seb.url_from_request(Req(), PUBLIC) == URL


# --------------------------------------------------------------------------- headers


def h(url, key):
    return hashlib.sha256((url + key).encode()).hexdigest()


def test_correct_headers_accepted():
    r = seb.check_headers(URL, h(URL, CK), h(URL, BEK), [CK], [BEK])
    assert r.ok and r.reason is None


def test_header_replayed_on_another_url_is_refused():
    for other in (
        "https://thi.example.edu.vn/exam/DEMO/attempt?q=4",  # other query
        "https://thi.example.edu.vn/exam/DEMO/submit?q=3",  # other path
        "https://thi.example.edu.vn/exam/OTHER/attempt?q=3",
    ):
        r = seb.check_headers(other, h(URL, CK), h(URL, BEK), [CK], [BEK])
        assert not r.ok and r.reason == "config_key_mismatch"
        r = seb.check_headers(other, h(other, CK), h(URL, BEK), [CK], [BEK])
        assert not r.ok and r.reason == "browser_exam_key_mismatch"


def test_http_vs_https_and_trailing_slash_do_not_match():
    # The hash covers the URL exactly as the browser used it: a proxy that ends TLS while
    # CBT_PUBLIC_URL says http (or the reverse) breaks every check. That is by design; the
    # log hint names the cause.
    http_url = "http://thi.example.edu.vn/exam/DEMO/attempt?q=3"
    r = seb.check_headers(URL, h(http_url, CK), None, [CK], [])
    assert not r.ok and r.reason == "config_key_mismatch"
    assert "scheme http instead of https" in r.received["hint"]
    slash = "https://thi.example.edu.vn/exam/DEMO/attempt/?q=3"
    r = seb.check_headers(URL, h(slash, CK), None, [CK], [])
    assert not r.ok and "trailing slash" in r.received["hint"]
    r = seb.check_headers(URL, h("https://thi.example.edu.vn/exam/DEMO/attempt", CK), None, [CK], [])
    assert not r.ok and "query string missing" in r.received["hint"]


def test_missing_header_refused():
    assert seb.check_headers(URL, None, None, [CK], [BEK]).reason == "missing_headers"
    assert seb.check_headers(URL, h(URL, CK), None, [CK], [BEK]).reason == "missing_headers"
    assert seb.check_headers(URL, None, h(URL, BEK), [CK], [BEK]).reason == "missing_headers"
    assert seb.check_headers(URL, "  ", h(URL, BEK), [CK], [BEK]).reason == "missing_headers"


def test_no_keys_configured_refused():
    r = seb.check_headers(URL, h(URL, CK), h(URL, BEK), [], [])
    assert not r.ok and r.reason == "no_keys_configured"


def test_only_configured_lists_are_checked():
    assert seb.check_headers(URL, h(URL, CK), None, [CK], []).ok
    assert seb.check_headers(URL, None, h(URL, BEK), [], [BEK]).ok


def test_one_of_several_keys_matches():
    others = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5)]
    assert seb.check_headers(URL, h(URL, CK), h(URL, BEK), [*others, CK], [others[0], BEK, others[1]]).ok
    assert not seb.check_headers(URL, h(URL, CK), h(URL, BEK), others, [BEK]).ok


def test_header_case_and_key_case_tolerated():
    assert seb.check_headers(URL, h(URL, CK).upper(), f" {h(URL, BEK)} ", [CK.upper()], [BEK]).ok


def test_garbage_header_refused_without_error():
    r = seb.check_headers(URL, "Đ" * 64, "x", [CK], [BEK])
    assert not r.ok and r.reason == "config_key_mismatch"


def test_expected_and_received_are_loggable_and_truncated():
    r = seb.check_headers(URL, "ab" * 32, h(URL, BEK), [CK, BEK], [BEK])
    assert r.expected["url"] == URL
    assert r.expected["config_key_hashes"] == [h(URL, CK)[:16], h(URL, BEK)[:16]]
    assert r.expected["browser_exam_key_hashes"] == [h(URL, BEK)[:16]]
    assert r.received["config_key_hash"] == "ab" * 8
    assert "no accepted key" in r.received["hint"]
    json.dumps(r.log_fields())
    assert all(CK not in str(v) and h(URL, CK) not in str(v) for v in r.log_fields().values())


def test_normalize_key():
    assert seb.normalize_key(" " + CK.upper() + "\n") == CK
    with pytest.raises(ValueError):
        seb.normalize_key("abc")


# --------------------------------------------------------------------------- JavaScript API + nonce


def test_js_api_with_nonce():
    n = seb.new_nonce()
    assert n != seb.new_nonce() and len(n) >= 32
    page = seb.absolute_url(PUBLIC, seb.with_nonce("/exam/DEMO/attempt?q=3", n))
    assert seb.nonce_of(page) == n
    r = seb.check_js_keys(page, h(page, CK), h(page, BEK), n, [CK], [BEK])
    assert r.ok, r


def test_js_api_replay_with_another_nonce_or_url_refused():
    n1, n2 = seb.new_nonce(), seb.new_nonce()
    page1 = seb.absolute_url(PUBLIC, seb.with_nonce("/exam/DEMO/attempt", n1))
    page2 = seb.absolute_url(PUBLIC, seb.with_nonce("/exam/DEMO/attempt", n2))
    stolen_ck, stolen_bek = h(page1, CK), h(page1, BEK)
    # same hashes presented on the page that carries the new nonce: refused
    r = seb.check_js_keys(page2, stolen_ck, stolen_bek, n2, [CK], [BEK])
    assert not r.ok and r.reason == "config_key_mismatch"
    # the old page URL with the new nonce expected: refused before hashing
    r = seb.check_js_keys(page1, stolen_ck, stolen_bek, n2, [CK], [BEK])
    assert not r.ok and r.reason == "nonce_mismatch"
    # another page, same nonce
    other = seb.absolute_url(PUBLIC, seb.with_nonce("/exam/DEMO/submit", n1))
    assert not seb.check_js_keys(other, stolen_ck, stolen_bek, n1, [CK], [BEK]).ok


def test_js_api_without_nonce_or_keys_refused():
    page = seb.absolute_url(PUBLIC, "/exam/DEMO/attempt")
    assert seb.check_js_keys(page, h(page, CK), None, "", [CK], []).reason == "nonce_mismatch"
    n = seb.new_nonce()
    page = seb.absolute_url(PUBLIC, seb.with_nonce("/exam/DEMO/attempt", n))
    assert seb.check_js_keys(page, None, None, n, [CK], []).reason == "missing_js_keys"


def test_with_nonce_replaces_and_keeps_query():
    u = seb.with_nonce(seb.with_nonce("/a?x=1&seb_nonce=old", "n1"), "n2")
    assert u == "/a?x=1&seb_nonce=n2"
    assert seb.nonce_of("https://h/a?x=1") is None


# --------------------------------------------------------------------------- Config Key


def plain_seb_json(settings: dict) -> str:
    """A second, straightforward SEB-JSON, in the way Moodle's property_list::to_json works.

    json.dumps with no whitespace and no ASCII escaping, backslashes protected by a
    placeholder (json.dumps would double them), keys ordered by a comparator.
    """
    sub = "\ue000"

    def cmp(a, b):
        la, lb = a.lower(), b.lower()
        if la != lb:
            return -1 if la < lb else 1
        for ca, cb in zip(a, b, strict=False):  # same letters: lower case first
            if ca != cb:
                return -1 if ca.islower() else 1
        return 0

    def prep(v):
        if isinstance(v, dict):
            out = {}
            for k in sorted(v, key=functools.cmp_to_key(cmp)):
                pv = prep(v[k])
                if pv != {}:
                    out[k] = pv
            return out
        if isinstance(v, list):
            return [p for p in (prep(x) for x in v) if p != {}]
        if isinstance(v, bytes):
            return base64.b64encode(v).decode()
        if isinstance(v, dt.datetime):
            return v.isoformat(timespec="seconds") + "+00:00"
        if isinstance(v, str):
            return v.replace("\\", sub)
        return v

    top = {k: v for k, v in settings.items() if k != "originatorVersion"}
    return json.dumps(prep(top), ensure_ascii=False, separators=(",", ":")).replace(sub, "\\")


# Moodle mod/quiz/accessrule/seb/tests/property_list_test.php, json_data_provider(): plist → SEB-JSON.
MOODLE_JSON_CASES = [
    ({"date": dt.datetime(1940, 10, 9, 22, 13, 56)}, '{"date":"1940-10-09T22:13:56+00:00"}'),
    ({"data": b"blahblah"}, '{"data":"YmxhaGJsYWg="}'),
    ({"string": "hello wörld"}, '{"string":"hello wörld"}'),
    ({"string": "ws:\\localhost"}, '{"string":"ws:\\localhost"}'),
    ({"string": "ws:\\\\\\localhost"}, '{"string":"ws:\\\\\\localhost"}'),
    ({"bool": True}, '{"bool":true}'),
    ({"array": [False, True]}, '{"array":[false,true]}'),
    ({"bool": True, "array": []}, '{"array":[],"bool":true}'),
    ({"dict": {"dictbool": False, "dictbool2": True}}, '{"dict":{"dictbool":false,"dictbool2":true}}'),
    ({"bool": True, "emptydict": {}}, '{"bool":true}'),
    (
        {"testKey": "testValue", "allowWLAN": "testValue2", "allowWlan": "testValue3"},
        '{"allowWlan":"testValue3","allowWLAN":"testValue2","testKey":"testValue"}',
    ),
    ({"url": "http://test.com"}, '{"url":"http://test.com"}'),
    ({"dict": {"banana": False, "apple": True}}, '{"dict":{"apple":true,"banana":false}}'),
]


@pytest.mark.parametrize(("settings", "want"), MOODLE_JSON_CASES)
def test_seb_json_matches_moodle_cases(settings, want):
    assert seb.seb_json(settings) == want
    assert plain_seb_json(settings) == want


# The SEB-JSON that SEB 2.1.4 for macOS logged for Moodle's fixture unencrypted_mac_001.seb
# (moodle/moodle mod/quiz/accessrule/seb/tests/fixtures/JSON_unencrypted_mac_001.txt); Moodle's
# tests/config_key_test.php expects the Config Key 4fa9af8e...9292 for that file. Note the one
# unescaped backslash in "ws:\localhost:8706", exactly as SEB wrote it.
MAC_001_KEY = "4fa9af8ec8759eb7c680752ef4ee5eaf1a860628608fccae2715d519849f9292"
MAC_001_JSON = (
    '{"additionalResources":[],"allowBrowsingBackForward":false,"allowDictation":false,"allowDictionaryLo'
    'okup":false,"allowDisplayMirroring":false,"allowDownUploads":false,"allowedDisplayBuiltin":true,"all'
    'owedDisplaysMaxNumber":1,"allowFlashFullscreen":false,"allowiOSBetaVersionNumber":0,"allowiOSVersion'
    'NumberMajor":9,"allowiOSVersionNumberMinor":3,"allowiOSVersionNumberPatch":5,"allowPDFPlugIn":false,'
    '"allowPreferencesWindow":true,"allowQuit":true,"allowScreenSharing":false,"allowSiri":false,"allowSp'
    'ellCheck":false,"allowSwitchToApplications":false,"allowUserAppFolderInstall":false,"allowUserSwitch'
    'ing":true,"allowVideoCapture":false,"allowVirtualMachine":false,"allowWlan":false,"blacklistURLFilte'
    'r":"","blockPopUpWindows":false,"browserMediaAutoplay":false,"browserMessagingPingTime":120000,"brow'
    'serMessagingSocket":"ws:\\localhost:8706","browserScreenKeyboard":false,"browserURLSalt":true,"browse'
    'rUserAgent":"","browserUserAgentiOS":0,"browserUserAgentiOSCustom":"","browserUserAgentMac":0,"brows'
    'erUserAgentMacCustom":"","browserUserAgentWinDesktopMode":0,"browserUserAgentWinDesktopModeCustom":"'
    '","browserUserAgentWinTouchMode":0,"browserUserAgentWinTouchModeCustom":"","browserUserAgentWinTouch'
    'ModeIPad":"Mozilla/5.0 (iPad; CPU OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) '
    'Version/11.0 Mobile/15E148 Safari/604.1","browserViewMode":0,"browserWindowAllowReload":true,"browse'
    'rWindowShowURL":0,"chooseFileToUploadPolicy":0,"configFileCreateIdentity":false,"configFileEncryptUs'
    'ingIdentity":false,"configKeySalt":"","createNewDesktop":true,"detectStoppedProcess":true,"downloadA'
    'ndOpenSebConfig":true,"downloadDirectoryOSX":"/Users/andrewmadden/Downloads","downloadDirectoryWin":'
    '"Downloads","downloadPDFFiles":false,"embeddedCertificates":[],"enableAltEsc":false,"enableAltF4":fa'
    'lse,"enableAltMouseWheel":false,"enableAltTab":true,"enableAppSwitcherCheck":true,"enableBrowserWind'
    'owToolbar":false,"enableCtrlEsc":false,"enableDrawingEditor":false,"enableEsc":true,"enableF1":true,'
    '"enableF10":true,"enableF11":true,"enableF12":true,"enableF2":true,"enableF3":true,"enableF4":true,"'
    'enableF5":true,"enableF6":true,"enableF7":true,"enableF8":true,"enableF9":true,"enableJava":false,"e'
    'nableJavaScript":true,"enableLogging":true,"enablePlugIns":true,"enablePrintScreen":false,"enablePri'
    'vateClipboard":true,"enableRightMouse":true,"enableSebBrowser":true,"enableStartMenu":false,"enableT'
    'ouchExit":false,"enableZoomPage":true,"enableZoomText":true,"examKeySalt":"4iLONVAc1yKWLxbe6Vbf2vWYQ'
    'O6zIRAobKgc3f25LH8=","examSessionClearSessionCookies":true,"examSessionReconfigureAllow":false,"exam'
    'SessionReconfigureConfigURL":"","exitKey1":2,"exitKey2":10,"exitKey3":5,"forceAppFolderInstall":true'
    ',"hashedAdminPassword":"","hashedQuitPassword":"","hideBrowserWindowToolbar":false,"hookKeys":true,"'
    'ignoreExitKeys":true,"ignoreQuitPassword":false,"insideSebEnableChangeAPassword":false,"insideSebEna'
    'bleEaseOfAccess":false,"insideSebEnableLockThisComputer":false,"insideSebEnableLogOff":false,"inside'
    'SebEnableNetworkConnectionSelector":false,"insideSebEnableShutDown":false,"insideSebEnableStartTaskM'
    'anager":false,"insideSebEnableSwitchUser":false,"insideSebEnableVmWareClientShade":false,"killExplor'
    'erShell":false,"logDirectoryOSX":"","logDirectoryWin":"","logLevel":4,"logSendingRequiresAdminPasswo'
    'rd":false,"mainBrowserWindowHeight":"100%","mainBrowserWindowPositioning":1,"mainBrowserWindowWidth"'
    ':"100%","minMacOSVersion":4,"mobileAllowInlineMediaPlayback":true,"mobileAllowPictureInPictureMediaP'
    'layback":false,"mobileAllowQRCodeConfig":false,"mobileAllowSingleAppMode":false,"mobileCompactAllowI'
    'nlineMediaPlayback":false,"mobileEnableASAM":true,"mobileEnableGuidedAccessLinkTransform":false,"mob'
    'ilePreventAutoLock":true,"mobileShowSettings":false,"mobileStatusBarAppearance":1,"mobileStatusBarAp'
    'pearanceExtended":1,"mobileSupportedFormFactorsCompact":true,"mobileSupportedFormFactorsNonTelephony'
    'Compact":true,"mobileSupportedFormFactorsRegular":true,"mobileSupportedScreenOrientationsCompactLand'
    'scapeLeft":true,"mobileSupportedScreenOrientationsCompactLandscapeRight":true,"mobileSupportedScreen'
    'OrientationsCompactPortrait":true,"mobileSupportedScreenOrientationsCompactPortraitUpsideDown":false'
    ',"mobileSupportedScreenOrientationsRegularLandscapeLeft":true,"mobileSupportedScreenOrientationsRegu'
    'larLandscapeRight":true,"mobileSupportedScreenOrientationsRegularPortrait":true,"mobileSupportedScre'
    'enOrientationsRegularPortraitUpsideDown":true,"monitorProcesses":true,"newBrowserWindowAllowReload":'
    'true,"newBrowserWindowByLinkBlockForeign":false,"newBrowserWindowByLinkHeight":"100%","newBrowserWin'
    'dowByLinkPolicy":1,"newBrowserWindowByLinkPositioning":2,"newBrowserWindowByLinkWidth":"1000","newBr'
    'owserWindowByScriptBlockForeign":false,"newBrowserWindowByScriptPolicy":2,"newBrowserWindowNavigatio'
    'n":true,"newBrowserWindowShowReloadWarning":false,"newBrowserWindowShowURL":2,"openDownloads":false,'
    '"oskBehavior":2,"permittedProcesses":[],"pinEmbeddedCertificates":false,"prohibitedProcesses":[],"pr'
    'oxies":{"org_safeexambrowser_SEB_AutoConfigurationEnabled":false,"org_safeexambrowser_SEB_AutoConfig'
    'urationJavaScript":"","org_safeexambrowser_SEB_AutoConfigurationURL":"","org_safeexambrowser_SEB_Aut'
    'oDiscoveryEnabled":false,"org_safeexambrowser_SEB_ExceptionsList":[],"org_safeexambrowser_SEB_Exclud'
    'eSimpleHostnames":false,"org_safeexambrowser_SEB_FTPEnable":false,"org_safeexambrowser_SEB_FTPPassiv'
    'e":true,"org_safeexambrowser_SEB_FTPPassword":"","org_safeexambrowser_SEB_FTPPort":21,"org_safeexamb'
    'rowser_SEB_FTPProxy":"","org_safeexambrowser_SEB_FTPRequiresPassword":false,"org_safeexambrowser_SEB'
    '_FTPUsername":"","org_safeexambrowser_SEB_HTTPEnable":false,"org_safeexambrowser_SEB_HTTPPassword":"'
    '","org_safeexambrowser_SEB_HTTPPort":80,"org_safeexambrowser_SEB_HTTPProxy":"","org_safeexambrowser_'
    'SEB_HTTPRequiresPassword":false,"org_safeexambrowser_SEB_HTTPSEnable":false,"org_safeexambrowser_SEB'
    '_HTTPSPassword":"","org_safeexambrowser_SEB_HTTPSPort":443,"org_safeexambrowser_SEB_HTTPSProxy":"","'
    'org_safeexambrowser_SEB_HTTPSRequiresPassword":false,"org_safeexambrowser_SEB_HTTPSUsername":"","org'
    '_safeexambrowser_SEB_HTTPUsername":"","org_safeexambrowser_SEB_RTSPEnable":false,"org_safeexambrowse'
    'r_SEB_RTSPPassword":"","org_safeexambrowser_SEB_RTSPPort":554,"org_safeexambrowser_SEB_RTSPProxy":""'
    ',"org_safeexambrowser_SEB_RTSPRequiresPassword":false,"org_safeexambrowser_SEB_RTSPUsername":"","org'
    '_safeexambrowser_SEB_SOCKSEnable":false,"org_safeexambrowser_SEB_SOCKSPassword":"","org_safeexambrow'
    'ser_SEB_SOCKSPort":1080,"org_safeexambrowser_SEB_SOCKSProxy":"","org_safeexambrowser_SEB_SOCKSRequir'
    'esPassword":false,"org_safeexambrowser_SEB_SOCKSUsername":""},"proxySettingsPolicy":0,"quitURL":"","'
    'quitURLConfirm":true,"quitURLRestart":false,"removeBrowserProfile":false,"removeLocalStorage":false,'
    '"restartExamPasswordProtected":true,"restartExamText":"","restartExamURL":"","restartExamUseStartURL'
    '":false,"sebConfigPurpose":0,"sebMode":0,"sebServerFallback":false,"sebServerURL":"","sebServicePoli'
    'cy":2,"sendBrowserExamKey":true,"showBackToStartButton":true,"showInputLanguage":false,"showMenuBar"'
    ':true,"showNavigationButtons":false,"showQuitButton":true,"showReloadButton":true,"showReloadWarning'
    '":false,"showScanQRCodeButton":false,"showTaskBar":true,"showTime":true,"startURL":"https://www.goog'
    'le.com","startURLAllowDeepLink":false,"startURLAppendQueryParameter":false,"taskBarHeight":40,"touch'
    'Optimized":false,"URLFilterEnable":false,"URLFilterEnableContentFilter":false,"URLFilterIgnoreList":'
    '[],"URLFilterMessage":0,"urlFilterRegex":true,"URLFilterRules":[],"urlFilterTrustedContent":false,"w'
    'hitelistURLFilter":"","zoomMode":0}'
)


def mac_001_settings() -> dict:
    # The only backslash in the file is the unescaped one; double it so json can read it.
    return json.loads(MAC_001_JSON.replace("\\", "\\\\"))


def test_config_key_known_answer_from_seb_and_moodle():
    assert hashlib.sha256(MAC_001_JSON.encode()).hexdigest() == MAC_001_KEY
    settings = mac_001_settings()
    assert settings["browserMessagingSocket"] == "ws:\\localhost:8706"
    assert seb.seb_json(settings) == MAC_001_JSON
    assert seb.config_key(settings) == MAC_001_KEY
    assert seb.config_key({**settings, "originatorVersion": "SEB_OSX_2.1.4"}) == MAC_001_KEY
    # and through a .seb file (plist) with the keys shuffled and reversed
    shuffled = dict(reversed(list(settings.items())))
    assert seb.config_key_for_file(plistlib.dumps(shuffled, sort_keys=False)) == MAC_001_KEY
    assert seb.config_key_for_file(plistlib.dumps(shuffled, fmt=plistlib.FMT_BINARY)) == MAC_001_KEY


def test_config_key_matches_plain_implementation():
    settings = {
        "startURL": "https://thi.example.edu.vn/exam/DEMO",
        "b": [{"Z": 1, "a": {}, "y": [{}]}, {}, "x"],
        "A": {"nested": {"deeper": {}}, "Keep": False},
        "examKeySalt": b"\x00\x01salt",
        "when": dt.datetime(2025, 6, 1, 7, 30, 0),
        "title": "Kỳ thi Toán — lớp 10",
        "filter": "^.*?:\\/\\/exam\\.vn$",
        "originatorVersion": "SEB_Win_3.9",
    }
    want = hashlib.sha256(plain_seb_json(settings).encode()).hexdigest()
    assert seb.config_key(settings) == want
    assert seb.seb_json(settings).startswith('{"A":{"Keep":false},"b":[{"y":[],"Z":1},"x"]')


def test_config_key_ignores_originator_version_and_key_order():
    a = {"startURL": "https://h/x", "allowQuit": True, "Proxies": {"b": 1, "A": 2}}
    b = {"Proxies": {"A": 2, "b": 1}, "allowQuit": True, "startURL": "https://h/x", "originatorVersion": "x"}
    assert seb.config_key(a) == seb.config_key(b)
    assert seb.config_key(a) != seb.config_key({**a, "allowQuit": False})
    assert seb.seb_json({}) == "{}"


def test_config_key_rejects_unknown_types():
    with pytest.raises(TypeError):
        seb.config_key({"x": None})


# --------------------------------------------------------------------------- .seb file and links


def test_generated_seb_parses_and_has_stable_key():
    start, quit_ = "https://thi.example.edu.vn/exam/DEMO/start", "https://thi.example.edu.vn/exam/DEMO/done"
    raw = seb.seb_config(start, quit_, exam_title='Toán "cuối kỳ"\n10A')
    assert raw.startswith(b"<?xml") and b"<plist" in raw
    s = plistlib.loads(raw)
    assert s["startURL"] == start and s["quitURL"] == quit_
    assert s["sendBrowserExamKey"] is True and s["allowQuit"] is True
    assert s["browserWindowTitleSuffix"] == "Toán 'cuối kỳ' 10A"
    key = seb.config_key_for_file(raw)
    assert len(key) == 64
    assert key == seb.config_key(seb.seb_settings(start, quit_, exam_title='Toán "cuối kỳ"\n10A'))
    assert key == seb.config_key_for_file(seb.seb_config(start, quit_, exam_title='Toán "cuối kỳ"\n10A'))
    assert key == hashlib.sha256(plain_seb_json(s).encode()).hexdigest()
    assert key != seb.config_key_for_file(seb.seb_config(start, quit_, exam_title="x"))
    assert seb.config_key_for_file(
        seb.seb_config(start, quit_, exam_title="x", allow_quit=False)
    ) != seb.config_key_for_file(seb.seb_config(start, quit_, exam_title="x"))
    assert seb.MIME_TYPE == "application/seb"


def test_generated_seb_options():
    s = plistlib.loads(
        seb.seb_config(
            "https://h.vn/s",
            "https://h.vn/q",
            exam_title="T",
            allow_quit=False,
            quit_password="secret",
            url_filter_hosts=["h.vn"],
            web_view_policy=3,
        )
    )
    assert s["allowQuit"] is False
    assert s["hashedQuitPassword"] == hashlib.sha256(b"secret").hexdigest()
    assert s["URLFilterEnable"] is True and {r["expression"] for r in s["URLFilterRules"]} == {"h.vn", "h.vn/*"}
    assert s["browserWindowWebView"] == 3
    with pytest.raises(ValueError):
        seb.seb_config("ftp://h.vn/s", "https://h.vn/q", exam_title="T")


def test_seb_links():
    assert (
        seb.seb_link("https://thi.example.edu.vn/exam/DEMO/config.seb?x=1")
        == "sebs://thi.example.edu.vn/exam/DEMO/config.seb?x=1"
    )
    assert seb.seb_link("http://10.0.0.5:8080/c.seb") == "seb://10.0.0.5:8080/c.seb"
    assert seb.http_link("sebs://h.vn/c.seb") == "https://h.vn/c.seb"
    assert seb.http_link(seb.seb_link("http://h.vn/c.seb")) == "http://h.vn/c.seb"
    for bad in ("ftp://h/c.seb", "/c.seb"):
        with pytest.raises(ValueError):
            seb.seb_link(bad)
    with pytest.raises(ValueError):
        seb.http_link("https://h/c.seb")


# --------------------------------------------------------------------------- policy


def test_parse_seb_policy():
    problems: list[str] = []
    p = seb.parse_seb_policy({"required": True, "config_keys": [CK.upper()], "browser_exam_keys": BEK}, problems)
    assert problems == []
    assert p["required"] and p["config_keys"] == [CK] and p["browser_exam_keys"] == [BEK] and p["js_api"]
    assert seb.parse_seb_policy(True, problems)["required"] and problems == []
    assert not seb.parse_seb_policy(None, problems)["required"]
    seb.parse_seb_policy({"required": "yes", "config_keys": ["nothex"], "colour": 1}, problems)
    assert len(problems) == 3
    problems.clear()
    seb.parse_seb_policy({"required": True, "serve_config": False}, problems)
    assert problems and "no key to check" in problems[0]


# --------------------------------------------------------------------------- on the server

SEB_CONFIG_ONLY = ["  seb: {required: true}\n"]


@pytest.mark.parametrize("locked_exam", SEB_CONFIG_ONLY, indirect=True)
async def test_seb_waits_for_the_public_url_instead_of_trusting_host(
    client, staff, locked_exam, settings, aiohttp_client
):
    """Without CBT_PUBLIC_URL, the Host header (any client's to set) would
    shape the .seb file's start and quit addresses and the URL every hash covers."""
    assert not settings.public_url
    resp = await client.get(
        "/exam/LOCK-T/config.seb", headers={"Host": "attacker.example", "Accept": "application/json"}
    )
    error = (await resp.json())["error"]
    assert resp.status == 409 and error["code"] == "public_url_needed" and "CBT_PUBLIC_URL" in error["message"]
    headers, _ = await sign_in(client, locked_exam["0000000001"])
    start = await client.post("/api/v1/start", json={}, headers=headers)
    assert start.status == 409 and (await start.json())["error"]["code"] == "public_url_needed"

    configured = await aiohttp_client(create_app(settings.replace(public_url=PUBLIC)))
    resp = await configured.get("/exam/LOCK-T/config.seb", headers={"Host": "attacker.example"})
    assert resp.status == 200
    body = await resp.read()
    assert PUBLIC.encode() in body and b"attacker.example" not in body


@pytest.mark.parametrize("locked_exam", SEB_CONFIG_ONLY, indirect=True)
async def test_a_config_key_alone_is_called_a_configuration_check(client, conn, dsn, staff, locked_exam, tmp_path):
    assert seb.assurance({"required": True, "config_keys": [CK]}) == "config"
    assert seb.assurance({"required": True, "browser_exam_keys": [BEK]}) == "client"
    assert seb.assurance({"required": False, "browser_exam_keys": [BEK]}) == "none"
    await login(client, "admin")
    page = await (await client.get("/workspace/exams/LOCK-T")).text()
    assert 'data-assurance="config"' in page and "không chứng minh máy dùng SEB" in page
    # The teacher's form says so while the exam is being written.
    from support.workspace import csrf, form_for

    release_id = await conn.fetchval("SELECT id FROM bank_releases")
    data = form_for(release_id, code="SEB-D", seb_required="1") | {"csrf_token": await csrf(client), "action": "check"}
    form = await (await client.post("/workspace/exams/new", data=data)).text()
    assert 'id="seb-config-only"' in form and "Browser Exam Key" in form
    data["seb_browser_exam_keys"] = BEK
    assert 'id="seb-config-only"' not in await (await client.post("/workspace/exams/new", data=data)).text()
    from support.cli import cbt, env_for

    shown = cbt("exam", "seb", "LOCK-T", env=env_for(tmp_path / "d", CBT_DATABASE_URL=dsn, CBT_PUBLIC_URL=PUBLIC))
    assert shown.returncode == 0, shown.stderr
    assert "Config Key of the generated configuration" in shown.stdout
    assert "not proof that the client is Safe Exam Browser" in shown.stderr
    assert "browser_exam_keys" in shown.stderr

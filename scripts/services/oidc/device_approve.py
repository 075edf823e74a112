#!/usr/bin/env python3
"""Play the human in an RFC 8628 device flow against the CI oidc-provider (dev interactions).

usage: device_approve.py VERIFICATION_URI_COMPLETE [LOGIN] [--deny]
Follows the provider's own HTML forms (user-code confirm -> login -> consent) with a cookie
jar, stdlib only. LOGIN picks the user (and so the groups, see users.json). --deny presses
"Abort" on the confirm page, so the client's next poll gets access_denied.
Exit 0 when the provider shows its device-flow success (or, with --deny, abort) page.
"""

import html
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request


def forms(page):
    for m in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page, re.S | re.I):
        attrs, body = m.group(1), m.group(2)
        action = re.search(r'action="([^"]*)"', attrs)
        fields = {}
        for inp in re.finditer(r"<input\b([^>]*)>", body, re.I):
            a = inp.group(1)
            n = re.search(r'name="([^"]*)"', a)
            v = re.search(r'value="([^"]*)"', a)
            if n:
                fields[n.group(1)] = html.unescape(v.group(1)) if v else ""
        for b in re.finditer(r"<button\b([^>]*)>", body, re.I):
            a = b.group(1)
            n = re.search(r'name="([^"]*)"', a)
            v = re.search(r'value="([^"]*)"', a)
            if n and n.group(1) != "abort":
                fields.setdefault(n.group(1), html.unescape(v.group(1)) if v else "")
        yield (html.unescape(action.group(1)) if action else None), fields


def approve(uri, login="ci-user", deny=False):
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    r = opener.open(uri)
    url, page = r.geturl(), r.read().decode()
    for _ in range(10):
        if re.search(r"Sign-in Success|successfully|You can now close", page, re.I):
            return True
        if deny and re.search(r"aborted|access_denied|interrupted", page, re.I):
            return True
        fs = [f for f in forms(page) if f[0] is not None or f[1]]
        if not fs:
            raise RuntimeError(f"no form on {url}: {page[:300]}")
        action, fields = fs[0]
        if "login" in fields:
            fields["login"] = login
        if "password" in fields:
            fields["password"] = "any"
        if "confirm" in fields and not fields["confirm"]:
            fields["confirm"] = "yes"
        if deny and fields.get("user_code"):  # the confirm page: press [ Abort ] instead
            fields.pop("confirm", None)
            fields["abort"] = "yes"
        target = urllib.parse.urljoin(url, action or url)
        r = opener.open(target, urllib.parse.urlencode(fields).encode())
        url, page = r.geturl(), r.read().decode()
    raise RuntimeError(f"device flow did not finish; last page {url}: {page[:300]}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--deny"]
    ok = approve(args[0], *(args[1:2]), deny="--deny" in sys.argv)
    print("device approved" if ok else "failed")
    sys.exit(0 if ok else 1)

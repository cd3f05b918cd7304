# ruff: noqa: E501  (HTML and CSS read better on their own lines than split to fit 100 columns)
"""Jinja2 templates of the web archive (autoescaped; only pre-rendered Markdown is marked safe).

Kept as strings so the site needs no package data. Links between pages are relative (`root`),
so the output works from `file://`, from `aiinfra-digest serve`, and under any path prefix.
The Content-Security-Policy allows no script at all: even if markup slipped through, it
could not run.
"""

from __future__ import annotations

BASE = """\
<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
img-src data:; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="strict-origin-when-cross-origin">
<title>{% block title %}{{ site_title }}{% endblock %}</title>
<link rel="icon" href="data:,">
<link rel="alternate" type="application/atom+xml" title="{{ site_title }}" href="{{ root }}atom.xml">
{% if canonical %}<link rel="canonical" href="{{ canonical }}">{% endif %}
<style>
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--link:#0969da;--soft:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--line:#3d444d;--link:#4493f8;--soft:#151b23}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0 auto;max-width:46rem;padding:1rem 1rem 3rem;color:var(--fg);background:var(--bg);
font-family:"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;font-size:16px;
line-height:1.75;overflow-wrap:anywhere}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:1.5rem;line-height:1.3;margin:.5rem 0 1rem}
h2{font-size:1.25rem;border-bottom:1px solid var(--line);padding-bottom:.25rem;margin-top:2rem}
h3{font-size:1.1rem;margin:1.5rem 0 .25rem}
ul,ol{padding-left:1.4rem}li{margin:.15rem 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;
background:var(--soft);padding:.1em .3em;border-radius:4px}
pre{background:var(--soft);padding:.75rem;border-radius:6px;overflow-x:auto}pre code{padding:0}
blockquote{margin:1rem 0;padding:.25rem 1rem;border-left:4px solid var(--line);color:var(--muted)}
header.site,nav.crumbs,footer{font-size:.9rem;color:var(--muted)}
header.site{display:flex;flex-wrap:wrap;gap:.25rem 1rem;border-bottom:1px solid var(--line);padding-bottom:.5rem}
header.site .name{font-weight:600}
footer{margin-top:3rem;border-top:1px solid var(--line);padding-top:.5rem}
.meta{color:var(--muted);font-size:.9rem;margin:0 0 .5rem}
.scroll{overflow-x:auto}
table.counts{border-collapse:collapse;width:100%;font-size:.9rem;font-variant-numeric:tabular-nums}
table.counts th,table.counts td{padding:.2rem .35rem;border-bottom:1px solid var(--line);white-space:nowrap}
table.counts td:first-child{white-space:normal;overflow-wrap:anywhere;padding-left:0}
table.counts th{text-align:right;font-weight:600;color:var(--muted)}
table.counts td{text-align:right}table.counts th:first-child,table.counts td:first-child{text-align:left}
.quiet{color:var(--muted);font-size:.9rem;margin:.25rem 0 0}
.day h2{border:0;margin-bottom:.25rem}
</style>
</head>
<body>
<header class="site"><a class="name" href="{{ root }}index.html">{{ site_title }}</a>\
<a href="{{ root }}atom.xml">Atom 订阅</a></header>
{% block nav %}{% endblock %}
<main>
{% block main %}{% endblock %}
</main>
<footer>由 aiinfra-digest 根据 GitHub 公开数据生成；所有条目链接到 GitHub。</footer>
</body>
</html>
"""

COUNTS_LINE = """\
{% macro counts_line(c) -%}
{%- if c is none -%}
{%- elif c.failed -%}<p class="meta">当天数据未能获取</p>
{%- else -%}<p class="meta">合并 PR {{ c.merged }} · 新 issue {{ c.issues }} · commit {{ c.commits }} · \
release {{ c.releases }} · +{{ "{:,}".format(c.additions) }}/-{{ "{:,}".format(c.deletions) }} 行</p>
{%- endif -%}
{%- endmacro %}
"""

# The body of a day, shared by its page and its feed entry (`internal` = links to our own pages).
DAY_FRAGMENT = """\
{% from "counts.html" import counts_line %}
{% macro day_fragment(day, internal) -%}
<h2>摘要</h2>
{{ day.summary_html }}
<h2>具体内容分析</h2>
{% for s in day.sections -%}
<section id="{{ s.slug }}">
<h3>{% if internal %}<a href="{{ day.iso }}/{{ s.slug }}.html">{{ s.repo }}</a>\
{% elif s.github %}<a href="{{ s.github }}">{{ s.repo }}</a>{% else %}{{ s.repo }}{% endif %}</h3>
{{ counts_line(s.counts) }}
{{ s.html }}
</section>
{% endfor -%}
<h2>总结</h2>
{{ day.conclusion_html }}
{% for note in day.notes_html %}<blockquote>{{ note }}</blockquote>
{% endfor -%}
{%- endmacro %}
"""

INDEX = """\
{% extends "base.html" %}
{% block main %}
<h1>{{ site_title }}</h1>
<p class="meta">{% if days %}共 {{ days|length }} 天，最新 {{ days[0].iso }}。\
{% else %}存档中还没有简报。{% endif %}每天按仓库统计：合并 PR、新 issue、commit、release。</p>
{% for d in days %}
<section class="day" id="d{{ d.iso }}">
<h2><a href="days/{{ d.iso }}.html">{{ d.iso }}</a> <small class="meta">{{ d.weekday }}</small></h2>
{% if d.active %}
<div class="scroll"><table class="counts">
<thead><tr><th>仓库</th><th>合并 PR</th><th>新 issue</th><th>commit</th><th>release</th></tr></thead>
<tbody>
{% for s in d.active %}<tr><td><a href="days/{{ d.iso }}/{{ s.slug }}.html">\
{% for part in s.repo.split("/") %}{% if not loop.first %}/<wbr>{% endif %}{{ part }}{% endfor %}</a></td>\
<td>{{ s.counts.merged }}</td><td>{{ s.counts.issues }}</td><td>{{ s.counts.commits }}</td>\
<td>{{ s.counts.releases }}</td></tr>
{% endfor %}</tbody>
</table></div>
{% endif %}
{% if d.quiet %}<p class="quiet">无更新：{{ d.quiet|join("、") }}</p>{% endif %}
{% if d.failed %}<p class="quiet">数据缺失：{{ d.failed|join("、") }}</p>{% endif %}
{% if not d.active and not d.quiet and not d.failed %}<p class="quiet">当天没有记录。</p>{% endif %}
</section>
{% endfor %}
{% endblock %}
"""

DAY = """\
{% extends "base.html" %}
{% from "fragment.html" import day_fragment %}
{% block title %}{{ day.iso }} · {{ site_title }}{% endblock %}
{% block nav %}<nav class="crumbs"><a href="{{ root }}index.html">全部日期</a>\
{% if day.newer %} · <a href="{{ day.newer }}.html" rel="next">{{ day.newer }} →</a>{% endif %}\
{% if day.older %} · <a href="{{ day.older }}.html" rel="prev">← {{ day.older }}</a>{% endif %}</nav>
{% endblock %}
{% block main %}
<h1>{{ day.iso }}（{{ day.weekday }}）AI Infra 新闻</h1>
{{ day_fragment(day, True) }}
{% endblock %}
"""

REPO_DAY = """\
{% extends "base.html" %}
{% from "counts.html" import counts_line %}
{% block title %}{{ s.repo }} · {{ day.iso }} · {{ site_title }}{% endblock %}
{% block nav %}<nav class="crumbs"><a href="{{ root }}index.html">全部日期</a> · \
<a href="../{{ day.iso }}.html">{{ day.iso }} 全部仓库</a>\
{% if s.github %} · <a href="{{ s.github }}">GitHub 仓库</a>{% endif %}</nav>
{% endblock %}
{% block main %}
<h1>{{ s.repo }} · {{ day.iso }}（{{ day.weekday }}）</h1>
{{ counts_line(s.counts) }}
{{ s.html }}
{% if details %}
<h2>当日明细</h2>
{% for g in details %}<h3>{{ g.title }}（{{ g.items|length }}）</h3>
<ul>
{% for i in g.items %}<li>{% if i.url %}<a href="{{ i.url }}" rel="nofollow noopener">{{ i.label }}</a>\
{% else %}{{ i.label }}{% endif %} {{ i.text }}</li>
{% endfor %}</ul>
{% endfor %}
{% endif %}
{% endblock %}
"""

TEMPLATES: dict[str, str] = {
    "base.html": BASE,
    "counts.html": COUNTS_LINE,
    "fragment.html": DAY_FRAGMENT,
    "index.html": INDEX,
    "day.html": DAY,
    "repo_day.html": REPO_DAY,
}

"""reportqa Streamlit app (placeholder until the app issue lands): lists the stored reports."""

import os

import streamlit as st

from qa.config import Settings
from qa.errors import QAError
from qa.wiring import open_services

st.set_page_config(page_title="reportqa 报告问答", layout="wide")
st.title("reportqa 报告问答")


@st.cache_resource
def services():
    return open_services(Settings.from_env(os.environ))


try:
    records = services().store.reports()
except QAError as ex:
    st.error(str(ex))
    st.stop()
if not records:
    st.info("文档库为空：请先运行 `qa ingest data/reports` 导入示例报告。")
else:
    st.subheader(f"文档库（{len(records)} 份报告）")
    st.dataframe(
        [
            {
                "报告": r.report_id,
                "标题": r.meta.title,
                "地区": r.meta.region,
                "年度": r.meta.year,
                "分块": r.n_chunks,
            }
            for r in records
        ],
        hide_index=True,
    )
    st.caption("问答、摘要、对比与评测页面将在后续版本提供。")

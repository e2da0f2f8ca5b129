"""hmmn_deploy.core: what the exporter and the runtime both stand on, importing neither.

Today: the TensorRT flavours (`tensorrt_lib`) and file hashing (`files`); and the page that
hmmn-eval's and hmmn-bench's HTML reports share (`report_page`).
"""

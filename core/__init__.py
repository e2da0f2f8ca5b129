"""hmmn_deploy.core: what the exporter and the runtime both stand on, importing neither.

Today: the TensorRT flavours (`tensorrt_lib`), file hashing (`files`), what the CPU runs
natively (`cpu`); and, for the commands above it, masks drawn on frames (`drawing`: hmmn-run's
overlays and hmmn-eval's thumbnails), the page that the HTML reports share (`report_page`), the
size a model processes frames at (`working_size`) and the resizing to and from it (`resize`).
"""

"""MindSpore runs on the CPU in graph mode with two threads; the thread count may be set only once a process."""
import mindspore as ms

ms.set_device("CPU")
ms.set_context(mode=ms.GRAPH_MODE)
ms.device_context.cpu.op_tuning.threads_num(2)
